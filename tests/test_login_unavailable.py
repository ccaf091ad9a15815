"""
Every way a sign-in can fail on our side is a branded 503 with Retry-After, quickly:
a log that cannot be written, and a database that cannot be reached, on every login path.
"""

import http.client
import re
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from activitylog.models import AuthEvent
from tests.conftest import PASSWORD, portal_login
from tests.servers import asgi_server, free_port
from tests.test_capture import _break_inserts

ROOT = Path(__file__).resolve().parent.parent
# The settings wait DB_POOL_TIMEOUT = 2 s for a connection. Before that bound a login
# hung for 10 s; this is a timeout, not a speed benchmark, so the bound is generous.
ANSWER_WITHIN = 6.0


def assert_branded_503(status: int, headers: dict, body: str, action: str = "sign you in") -> None:
    assert status == 503, body[:500]
    assert int(headers["Retry-After"]) > 0
    assert "Agency<strong>Handy</strong>" in body and f"We couldn't {action} just now" in body
    assert "Traceback" not in body


def test_a_wrong_password_while_the_log_cannot_be_written_is_a_503(client, acme):
    _break_inserts()

    response = portal_login(client, "client@acme.test", "wrong-password")

    assert_branded_503(response.status_code, response, response.content.decode())
    assert "_auth_user_id" not in client.session
    assert AuthEvent.objects.count() == 0


def test_a_login_and_a_logout_that_cannot_be_recorded_say_when_to_retry(client, acme):
    portal_login(client, "client@acme.test")
    _break_inserts()

    logout = client.post("/portal/logout/")
    client.cookies.clear()
    login = portal_login(client, "client@acme.test")

    assert_branded_503(logout.status_code, logout, logout.content.decode(), "sign you out")
    assert_branded_503(login.status_code, login, login.content.decode())


# Real server processes ----------------------------------------------------------------------


@contextmanager
def _black_hole():
    """A TCP port that accepts connections and never answers: a hung database host."""
    listener = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for s in [*held, listener]:
            s.close()


@contextmanager
def _production_server(database_url: str, log_path: Path):
    """A production server process (daphne, DEBUG off) whose database is `database_url`; yields its port."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # It comes up without the database: its readiness check, the login form, needs none.
    with asgi_server(redis=False, log_path=log_path, env={"DATABASE_URL": database_url}) as base_url:
        yield int(base_url.rsplit(":", 1)[1])


def _request(port: int, method: str, path: str, *, cookies: dict | None = None, form: dict | None = None):
    """One request; returns (status, headers, body, seconds it took)."""
    headers = {"Host": "127.0.0.1"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    body = None
    if form is not None:
        body = "&".join(f"{k}={v}" for k, v in form.items())
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode(), time.monotonic() - started
    finally:
        conn.close()


def _csrf(port: int, path: str) -> dict:
    """The login form needs no database: it gives a CSRF cookie and token to post with."""
    status, headers, body, took = _request(port, "GET", path)
    assert status == 200 and took < ANSWER_WITHIN, body[:500]
    cookie = re.search(r"csrftoken=([^;]+)", headers["Set-Cookie"]).group(1)
    return {"cookie": cookie, "token": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)}


LOGIN_PATHS = [
    # (method, path, signed-in cookie, action on the page)
    ("POST", "/portal/login/", False, "sign you in"),
    ("POST", "/login/", False, "sign you in"),
    ("GET", "/portal/login/", True, "sign you in"),
    ("GET", "/login/", True, "sign you in"),
    ("POST", "/portal/logout/", True, "sign you out"),
    ("POST", "/logout/", True, "sign you out"),
]


@pytest.fixture(params=["hung", "refused"])
def unreachable_database(request):
    if request.param == "hung":
        with _black_hole() as port:
            yield f"postgres://postgres@127.0.0.1:{port}/agencyhandy"
    else:
        yield f"postgres://postgres@127.0.0.1:{free_port()}/agencyhandy"  # nothing listens there


def test_every_login_path_is_a_quick_branded_503_when_the_database_is_unreachable(unreachable_database, request):
    log = ROOT / "test-artifacts" / f"{request.node.name}.log"
    with _production_server(unreachable_database, log) as port:
        csrf = _csrf(port, "/portal/login/")
        for method, path, signed_in, action in LOGIN_PATHS:
            cookies = {"csrftoken": csrf["cookie"]}
            if signed_in:
                cookies["sessionid"] = "a-session-the-database-would-know"
            form = {"csrfmiddlewaretoken": csrf["token"], "username": "client%40acme.test", "password": PASSWORD}
            status, headers, body, took = _request(
                port, method, path, cookies=cookies, form=form if method == "POST" else None
            )

            assert_branded_503(status, headers, body, action)
            assert took < ANSWER_WITHIN, f"{method} {path} took {took:.1f} s"


@pytest.mark.django_db(transaction=True)
def test_a_real_server_answers_a_wrong_password_it_cannot_log_with_a_503(acme):
    _break_inserts()
    try:
        with asgi_server() as base:
            port = int(base.rsplit(":", 1)[1])
            csrf = _csrf(port, "/portal/login/")
            form = {"csrfmiddlewaretoken": csrf["token"], "username": "client%40acme.test", "password": "wrong"}
            status, headers, body, _ = _request(
                port, "POST", "/portal/login/", cookies={"csrftoken": csrf["cookie"]}, form=form
            )
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("DROP TRIGGER refuse_insert ON activitylog_authevent")
                cursor.execute("DROP FUNCTION refuse_insert()")
            else:
                cursor.execute("DROP TRIGGER refuse_insert")

    assert_branded_503(status, headers, body)
    assert AuthEvent.objects.count() == 0
