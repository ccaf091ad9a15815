"""
The production command, as a deployment runs it (tests/servers.py: daphne, production
settings, DEBUG off, collected static files, Redis): what only shows on that path.
"""

import http.client
import json
import os
import re
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import PASSWORD
from tests.servers import HttpBrowser, asgi_server, collected_static, redis_available, server_redis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("server_passwords")]

ROW_ID = re.compile(r'<tr id="event-(\d+)"')
# channels_redis waits for a message in blocking reads of 5 s; an idle socket must
# outlive several of them.
IDLE_SECONDS = 20
ARRIVES_WITHIN = 5


def _get(base_url: str, path: str, **headers: str) -> http.client.HTTPResponse:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def _open_tab(staff: HttpBrowser, client_id: int, *, origin: str | None = None, headers: dict | None = None):
    """The Activity Log tab's websocket, as the browser opens it (no pings: browsers send none)."""
    return connect(
        f"{staff.websocket_base}/ws/clients/{client_id}/activity/",
        origin=origin or staff.base_url,
        additional_headers={"Cookie": f"sessionid={staff.cookie('sessionid')}", **(headers or {})},
        ping_interval=None, proxy=None, open_timeout=10,
    )


def _rows(ws, *, within: float) -> list[int]:
    return [int(i) for i in ROW_ID.findall(ws.recv(timeout=within))]


# Static files ---------------------------------------------------------------------------


def test_the_production_command_serves_hashed_gzipped_static_files_cached_for_a_year():
    with asgi_server(redis=False) as url:
        page = _get(url, "/login/").body.decode()
        stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page)
        assert stylesheet, "the page links the hashed stylesheet"
        manifest = json.loads((collected_static() / "staticfiles.json").read_text())["paths"]

        for path in (stylesheet.group(1), "/static/" + manifest["js/live.js"],
                     "/static/" + manifest["django_htmx/htmx-2.min.js"]):
            response = _get(url, path, **{"Accept-Encoding": "gzip"})
            assert response.status == 200, path
            assert response.getheader("Content-Encoding") == "gzip", path
            assert response.getheader("Cache-Control") == "max-age=315360000, public, immutable", path

        # An unhashed name may change under the same URL: cached briefly, not for a year.
        plain = _get(url, "/static/css/app.css")
        assert plain.status == 200
        assert plain.getheader("Cache-Control") == "max-age=60, public"
        assert _get(url, "/static/css/nothing.css").status == 404


# Idle sockets over Redis ----------------------------------------------------------------


def test_an_idle_tab_stays_open_over_redis_and_still_receives_a_later_login(acme):
    if not redis_available():
        reason = f"Redis is not reachable at {server_redis()[0]}; this test is about Redis"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (REQUIRE_BROWSER=1: server tests must run here)")
        pytest.skip(reason)
    with asgi_server() as url:
        staff = HttpBrowser(url)
        staff.sign_in("manager@acme.test", PASSWORD)
        with _open_tab(staff, acme.client.pk) as ws:
            ws.send(json.dumps({"type": "resync", "after": 0}))
            started = time.monotonic()
            try:
                frame = ws.recv(timeout=IDLE_SECONDS)
            except TimeoutError:
                pass  # nothing to send, and the socket stayed open: as it should
            except ConnectionClosed as closed:
                pytest.fail(f"The server closed the idle socket after {time.monotonic() - started:.1f} s "
                            f"with code {closed.rcvd.code if closed.rcvd else None}")
            else:
                pytest.fail(f"An idle tab received {frame!r}")

            portal = HttpBrowser(url)
            portal.sign_in("client@acme.test", PASSWORD, login_path="/portal/login/")
            assert len(_rows(ws, within=ARRIVES_WITHIN)) == 1


# The websocket Origin check -------------------------------------------------------------


def _refused(open_socket) -> bool:
    """True if the handshake is refused (HTTP 403); False if the socket opens."""
    try:
        ws = open_socket()
    except InvalidStatus as refused:
        assert refused.response.status_code == 403
        return True
    ws.close()
    return False


def _receives_the_row(ws, event_id: int) -> bool:
    ws.send(json.dumps({"type": "resync", "after": 0}))
    return _rows(ws, within=ARRIVES_WITHIN) == [event_id]


def test_a_socket_opens_only_from_the_sites_own_scheme_host_and_port(acme):
    from activitylog.services import auth_event_record

    event = auth_event_record(user=acme.portal_user, event_type="login")
    with asgi_server(redis=False) as url:
        staff = HttpBrowser(url)
        staff.sign_in("manager@acme.test", PASSWORD)
        port = int(url.rsplit(":", 1)[1])
        for origin in (
            f"https://127.0.0.1:{port}",  # only the scheme differs
            f"http://127.0.0.1:{port + 1}",  # only the port differs
            f"http://localhost:{port}",  # only the host differs (and it is in ALLOWED_HOSTS)
        ):
            assert _refused(lambda origin=origin: _open_tab(staff, acme.client.pk, origin=origin)), origin
        assert _refused(lambda: connect(f"{staff.websocket_base}/ws/clients/{acme.client.pk}/activity/", proxy=None,
                                        additional_headers={"Cookie": f"sessionid={staff.cookie('sessionid')}"}))

        with _open_tab(staff, acme.client.pk, origin=f"http://127.0.0.1:{port}") as ws:
            assert _receives_the_row(ws, event.pk)


def test_behind_a_tls_proxy_the_https_origin_opens_the_socket_and_the_http_one_does_not(acme):
    """The proxy (played here by the client) terminates TLS and says so in X-Forwarded-Proto."""
    from activitylog.services import auth_event_record

    event = auth_event_record(user=acme.portal_user, event_type="login")
    with asgi_server(redis=False, env={"TRUSTED_PROXIES": "127.0.0.1"}) as url:
        staff = HttpBrowser(url)
        staff.sign_in("manager@acme.test", PASSWORD)
        host = url.removeprefix("http://")
        proxied = {"X-Forwarded-Proto": "https"}
        assert _refused(lambda: _open_tab(staff, acme.client.pk, origin=f"http://{host}", headers=proxied))
        with _open_tab(staff, acme.client.pk, origin=f"https://{host}", headers=proxied) as ws:
            assert _receives_the_row(ws, event.pk)
