"""
"Export CSV" on the Activity Log tab: only Super Admins and Admins, exactly the filter in
force, a streamed async download whose memory stays flat however long the log.

Async tests: the view runs its database work in a worker thread with its own
connection, so the rows must be committed (transactional tests).
"""

import csv
import gc
import html
import io
import re
import tracemalloc
import urllib.request
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connections

from activitylog.models import AuthEvent, EventType, FailureReason
from activitylog.services import auth_event_record
from tests.bulk import record_in_bulk
from tests.conftest import ALL_ROLES, CHROME_UA, PASSWORD
from tests.servers import HttpBrowser, asgi_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _worker_thread_connection_closed():
    """The test client keeps the view thread's connection open; give it back at the end."""
    yield
    await sync_to_async(connections.close_all)()

T0 = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)  # still 9 March in New York


def export_url(people, query: str = "") -> str:
    return f"/clients/{people.client.pk}/activity/export.csv" + (f"?{query}" if query else "")


async def download(async_client, url: str, **headers):
    response = await async_client.get(url, **headers)
    body = b""
    if response.status_code == 200:
        assert response.streaming and response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content])
    else:
        body = response.content
    return response, body


def csv_ids(body: bytes) -> list[int]:
    return [int(row["event_id"]) for row in csv.DictReader(io.StringIO(body.decode(), newline=""))]


@pytest.fixture
def logged(acme, globex) -> dict[str, AuthEvent]:
    def rec(people, event_type, at, user=None, **extra):
        return auth_event_record(user=user or people.portal_user, event_type=event_type, occurred_at=at,
                                 ip="203.0.113.7", user_agent=CHROME_UA, **extra)

    return {
        "late_on_9th": rec(acme, EventType.LOGIN, T0, session_ref="1" * 64),
        "logout_10th": rec(acme, EventType.LOGOUT, T0 + timedelta(hours=12), session_ref="1" * 64),
        "member_12th": rec(acme, EventType.LOGIN, T0 + timedelta(days=2), user=acme.portal_member, session_ref="2" * 64),
        "globex": rec(globex, EventType.LOGIN, T0),
    }


@pytest.mark.parametrize("role", ["super_admin", "admin"])
async def test_super_admins_and_admins_download_their_clients_log_as_csv(async_client, acme, logged, role):
    await async_client.aforce_login(acme.staff(role))
    response, body = await download(async_client, export_url(acme))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    # Named after the client ("Acme Client Co"), then its id and the time of the export.
    assert re.fullmatch(rf'attachment; filename="activity-log-acme-client-co-{acme.client.pk}-\d{{8}}-\d{{6}}\.csv"',
                        response["Content-Disposition"])
    assert response["Cache-Control"] == "private, no-store"
    assert csv_ids(body) == [logged["late_on_9th"].pk, logged["logout_10th"].pk, logged["member_12th"].pk]


@pytest.mark.parametrize("role", ["manager", "employee"])
async def test_managers_and_employees_are_refused(async_client, acme, logged, role):
    await async_client.aforce_login(acme.staff(role))
    response, body = await download(async_client, export_url(acme))
    assert response.status_code == 403
    assert b"client@acme.test" not in body


@pytest.mark.parametrize("role", ALL_ROLES)
async def test_another_agencys_client_is_404_for_every_role(async_client, acme, globex, logged, role):
    await async_client.aforce_login(acme.staff(role))
    response, body = await download(async_client, export_url(globex))
    assert response.status_code == 404
    assert b"client@globex.test" not in body and globex.client.name.encode() not in body


async def test_portal_users_anonymous_visitors_and_agencyless_users_are_refused(async_client, acme, logged, root):
    response, _ = await download(async_client, export_url(acme))
    assert response.status_code == 302 and response.url.startswith("/login/?next=")

    await async_client.aforce_login(acme.portal_user)
    response, _ = await download(async_client, export_url(acme))
    assert response.status_code == 302 and response.url == "/portal/"

    await async_client.aforce_login(root)
    response, _ = await download(async_client, export_url(acme))
    assert response.status_code == 403


async def test_the_download_holds_exactly_the_filtered_rows_in_the_agencys_days(async_client, acme, logged):
    await async_client.aforce_login(acme.admin)

    assert csv_ids((await download(async_client, export_url(acme, "date_from=2026-03-09&date_to=2026-03-09")))[1]) == [
        logged["late_on_9th"].pk
    ]
    assert csv_ids((await download(async_client, export_url(acme, "type=logout")))[1]) == [logged["logout_10th"].pk]
    assert csv_ids((await download(async_client, export_url(acme, f"user={acme.portal_member.pk}")))[1]) == [
        logged["member_12th"].pk
    ]


async def test_a_viewer_who_reads_utc_exports_utc_days_as_their_tab_lists_them(async_client, acme, logged):
    await async_client.aforce_login(acme.admin)
    async_client.cookies["tz"] = "utc"
    # "late on the 9th" in New York is the 10th in UTC.
    day = f"{logged['late_on_9th'].occurred_at.astimezone(UTC):%Y-%m-%d}"
    assert day == "2026-03-10"
    query = f"date_from={day}&date_to={day}"
    exported = csv_ids((await download(async_client, export_url(acme, query)))[1])
    assert set(exported) == {logged["late_on_9th"].pk, logged["logout_10th"].pk}
    tab = (await async_client.get(f"/clients/{acme.client.pk}/activity/?{query}")).content.decode()
    assert sorted(int(i) for i in re.findall(r'<tr id="event-(\d+)"', tab)) == sorted(exported)


async def call_command_async(*args, **kwargs):
    await sync_to_async(call_command)(*args, **kwargs)


async def test_the_download_is_byte_for_byte_the_command_line_export(async_client, acme, logged):
    await async_client.aforce_login(acme.super_admin)
    _, body = await download(async_client, export_url(acme))
    out = StringIO()
    await call_command_async("export_activity_log", "--client", str(acme.client.pk), stdout=out)
    assert body == out.getvalue().encode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("type=deleted", "Select a valid choice"),
        ("user=abc", "Select a valid choice"),
        ("date_from=2026-02-30", "Enter a valid date"),
        ("date_from=2026-05-02&date_to=2026-05-01", "must be on or before"),
        ("date_to=9999-12-31", "Pick a date between"),
        ("excel=yes", "excel must be 1"),
        ("excel=2", "excel must be 1"),
        ("excel=", "excel must be 1"),
        ("excel=1&excel=1", "given once"),
    ],
)
async def test_a_bad_filter_is_a_clear_400(async_client, acme, logged, query, message):
    await async_client.aforce_login(acme.admin)
    response, body = await download(async_client, export_url(acme, query))
    assert response.status_code == 400
    assert message in body.decode()


def export_link(page: str, link_id: str = "export-csv") -> str | None:
    match = re.search(rf'<a id="{link_id}"[^>]*href="([^"]+)"', page)
    return html.unescape(match.group(1)) if match else None


@pytest.mark.parametrize("role", ["super_admin", "admin"])
async def test_the_button_links_to_the_export_of_the_current_filter(async_client, acme, logged, role):
    await async_client.aforce_login(acme.staff(role))
    page = (await async_client.get(f"/clients/{acme.client.pk}/activity/?type=login&date_from=2026-03-11")).content.decode()

    link = export_link(page)
    assert link == export_url(acme, "type=login&date_from=2026-03-11")
    assert ">Export CSV</a>" in page
    assert csv_ids((await download(async_client, link))[1]) == [logged["member_12th"].pk]
    # The second button: the same filter, for Excel.
    excel_link = export_link(page, "export-excel")
    assert excel_link == export_url(acme, "type=login&date_from=2026-03-11&excel=1")
    assert ">Export for Excel</a>" in page
    _, body = await download(async_client, excel_link)
    assert body.startswith(b"\xef\xbb\xbf") and csv_ids(body[3:]) == [logged["member_12th"].pk]


@pytest.mark.parametrize("role", ["manager", "employee"])
async def test_managers_and_employees_do_not_see_the_button(async_client, acme, logged, role):
    await async_client.aforce_login(acme.staff(role))
    page = (await async_client.get(f"/clients/{acme.client.pk}/activity/")).content.decode()
    assert "Export CSV" not in page and "export.csv" not in page


async def test_a_filter_changed_in_place_updates_the_button_out_of_band(async_client, acme, logged):
    await async_client.aforce_login(acme.admin)
    htmx = {"HX-Request": "true", "HX-Target": "activity-results"}

    swap = (await async_client.get(f"/clients/{acme.client.pk}/activity/?type=logout", headers=htmx)).content.decode()
    assert re.search(r'<a id="export-csv"[^>]*hx-swap-oob="true"', swap)
    assert export_link(swap) == export_url(acme, "type=logout")
    assert re.search(r'<a id="export-excel"[^>]*hx-swap-oob="true"', swap)
    assert export_link(swap, "export-excel") == export_url(acme, "type=logout&excel=1")

    # An invalid filter takes the button away rather than leave it exporting the old one.
    swap = (await async_client.get(f"/clients/{acme.client.pk}/activity/?type=nope", headers=htmx)).content.decode()
    assert '<span id="export-csv" hx-swap-oob="true"></span>' in swap
    assert '<span id="export-excel" hx-swap-oob="true"></span>' in swap
    assert export_link(swap) is None and export_link(swap, "export-excel") is None

    # A manager's filter swap carries no button at all.
    await async_client.aforce_login(acme.manager)
    swap = (await async_client.get(f"/clients/{acme.client.pk}/activity/?type=logout", headers=htmx)).content.decode()
    assert "export-csv" not in swap


async def _peak_memory_of_download(async_client, url: str) -> tuple[int, int]:
    """(bytes received, peak bytes of Python memory allocated while streaming them)."""
    gc.collect()
    tracemalloc.start()
    try:
        response = await async_client.get(url)
        # Under ASGI a sync iterator would be buffered whole before sending.
        assert response.is_async
        received = 0
        async for chunk in response.streaming_content:
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return received, peak


@pytest.fixture
def long_logs(acme, globex) -> None:
    agent = "Mozilla/5.0 " + "x" * 480
    record_in_bulk(globex.portal_user, 2_500, start=T0, user_agent=agent)
    record_in_bulk(acme.portal_user, 20_000, start=T0, user_agent=agent)


async def test_memory_stays_flat_however_large_the_download(async_client, acme, globex, long_logs):
    """
    A buffered download would hold the whole file at once; a streamed one holds about a
    chunk. 20,000 rows (~14 MB) must peak no higher than 2,500 rows (~2 MB), give or take 1 MB.
    """
    await async_client.aforce_login(globex.admin)
    await download(async_client, export_url(globex))  # warm up: imports, caches
    small_size, small_peak = await _peak_memory_of_download(async_client, export_url(globex))

    await async_client.aforce_login(acme.admin)
    large_size, large_peak = await _peak_memory_of_download(async_client, export_url(acme))

    assert small_size > 150_000 and large_size > 10_000_000
    assert large_peak < small_peak + 1_000_000, (small_peak, large_peak)
    assert large_peak * 4 < large_size, (large_peak, large_size)


async def test_excel_adds_a_byte_order_mark_and_nothing_else(async_client, acme, logged):
    await async_client.aforce_login(acme.admin)
    _, plain = await download(async_client, export_url(acme, "type=login"))
    _, excel = await download(async_client, export_url(acme, "type=login&excel=1"))
    _, explicit_plain = await download(async_client, export_url(acme, "type=login&excel=0"))

    assert not plain.startswith(b"\xef\xbb\xbf")
    assert excel == b"\xef\xbb\xbf" + plain
    assert explicit_plain == plain


async def test_the_download_has_readable_reasons_and_the_agencys_local_time(async_client, acme, logged):
    failed = await sync_to_async(auth_event_record)(
        user=acme.portal_user, event_type=EventType.LOGIN_FAILED, reason=FailureReason.BAD_PASSWORD,
        occurred_at=datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # New York's second 01:30 that night
    )
    await async_client.aforce_login(acme.admin)
    _, body = await download(async_client, export_url(acme, "type=login_failed"))
    [row] = csv.DictReader(io.StringIO(body.decode(), newline=""))

    assert int(row["event_id"]) == failed.pk
    assert (row["reason"], row["reason_text"]) == ("bad_password", "Wrong password")
    assert (row["occurred_at"], row["occurred_at_local"], row["time_zone"]) == (
        "2026-11-01T06:30:00.000000Z", "2026-11-01 01:30:00 EST", "America/New_York"
    )


@pytest.mark.parametrize(
    ("name", "ascii_part", "utf8_part"),
    [
        ("Müller & Söhne GmbH", "muller-sohne-gmbh", "m%C3%BCller-s%C3%B6hne-gmbh"),
        ("株式会社 ", "client", "%E6%A0%AA%E5%BC%8F%E4%BC%9A%E7%A4%BE"),
        ('"; filename=evil.exe', "filenameevilexe", None),
    ],
)
async def test_the_file_name_carries_the_clients_name_in_ascii_and_in_utf_8(
    async_client, acme, logged, name, ascii_part, utf8_part
):
    acme.client.name = name
    await acme.client.asave()
    await async_client.aforce_login(acme.admin)
    response, _ = await download(async_client, export_url(acme))

    stamp = rf"{acme.client.pk}-\d{{8}}-\d{{6}}\.csv"
    header = response["Content-Disposition"]
    if utf8_part is None:
        assert re.fullmatch(rf'attachment; filename="activity-log-{ascii_part}-{stamp}"', header)
    else:
        assert re.fullmatch(
            rf"""attachment; filename="activity-log-{ascii_part}-{stamp}"; filename\*=UTF-8''activity-log-{utf8_part}-{stamp}""",
            header,
        )
    header.encode("ascii")  # an HTTP header must travel as plain ASCII


async def test_a_real_server_streams_the_excel_download_with_its_file_name(server_passwords, acme, logged):
    """Through daphne with the production settings: headers as sent on the wire, and the body."""
    acme.client.name = "Ünïcödé Traders"
    await acme.client.asave()

    def fetch() -> tuple[dict, bytes, bytes]:
        with asgi_server(redis=False) as url:
            staff = HttpBrowser(url)
            staff.sign_in("admin@acme.test", PASSWORD)
            request = urllib.request.Request(url + export_url(acme, "excel=1"), headers={"User-Agent": "test"})
            with staff.opener.open(request, timeout=30) as response:
                headers, body = dict(response.headers), response.read()
        out = StringIO()
        call_command("export_activity_log", "--client", str(acme.client.pk), "--excel", stdout=out)
        return headers, body, out.getvalue().encode()

    headers, body, command_output = await sync_to_async(fetch, thread_sensitive=False)()
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        rf"""attachment; filename="activity-log-unicode-traders-{acme.client.pk}-\d{{8}}-\d{{6}}\.csv"; """
        rf"""filename\*=UTF-8''activity-log-%C3%BCn%C3%AFc%C3%B6d%C3%A9-traders-{acme.client.pk}-\d{{8}}-\d{{6}}\.csv""",
        headers["Content-Disposition"],
    )
    assert body.startswith(b"\xef\xbb\xbf") and body == command_output
    assert csv_ids(body[3:]) == [logged["late_on_9th"].pk, logged["logout_10th"].pk, logged["member_12th"].pk]
