"""
One clock (clients/clock.py): every time a person reads is spelled with its zone, UTC is
at hand, "how long ago" has one wording in Python and in the browser, and staff choose
the zone they read times in (their agency's, their browser's or UTC), kept across visits.
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from channels.db import database_sync_to_async
from django.test import Client as BrowserClient

from activitylog import live
from activitylog.models import EventType
from activitylog.services import auth_event_record
from clients.clock import ZONE_COOKIE, ago, spell, zone_choice
from tests.conftest import PASSWORD
from tests.servers import asgi_server
from tests.sockets import WITHIN, opened
from tests.test_browser import _log

NEW_YORK = ZoneInfo("America/New_York")


def test_a_time_in_the_hour_that_repeats_is_told_apart_by_its_zone():
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = first + timedelta(hours=1)  # 01:30 again, now EST
    assert spell(first, NEW_YORK) == "2026-11-01 01:30:00 EDT"
    assert spell(second, NEW_YORK) == "2026-11-01 01:30:00 EST"
    assert spell(first, ZoneInfo("Asia/Kolkata")) == "2026-11-01 11:00:00 IST"


@pytest.mark.parametrize(
    ("seconds", "wording"),
    [(-5, "just now"), (0, "just now"), (59, "just now"), (60, "1 minute ago"), (119, "1 minute ago"),
     (3599, "59 minutes ago"), (3600, "1 hour ago"), (86399, "23 hours ago"), (86400, "1 day ago"),
     (29 * 86400, "29 days ago"), (30 * 86400, "1 month ago"), (364 * 86400, "12 months ago"),
     (365 * 86400, "1 year ago"), (800 * 86400, "2 years ago")],
)
def test_how_long_ago_counts_whole_units(seconds, wording):
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert ago(now - timedelta(seconds=seconds), now) == wording


@pytest.mark.parametrize(
    ("cookie", "kind", "name"),
    [(None, "agency", "America/New_York"), ("", "agency", "America/New_York"), ("utc", "utc", "UTC"),
     ("browser:Europe/Berlin", "browser", "Europe/Berlin"), ("browser:Not/AZone", "agency", "America/New_York"),
     ("browser:", "agency", "America/New_York"), ("UTC; drop table", "agency", "America/New_York")],
)
def test_a_zone_cookie_that_is_not_understood_means_the_agencys_zone(cookie, kind, name):
    choice = zone_choice(cookie, agency_zone="America/New_York")
    assert (choice.kind, choice.name) == (kind, name)


def signed_in(email: str) -> BrowserClient:
    http = BrowserClient()
    http.login(username=email, password=PASSWORD)
    return http


def test_staff_choose_utc_and_every_page_then_shows_utc(acme):
    event = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
    manager = signed_in("manager@acme.test")
    tab = f"/clients/{acme.client.pk}/activity/"
    assert spell(event.occurred_at, NEW_YORK) in manager.get(tab).content.decode()

    response = manager.post("/clients/time-zone/", {"zone": "utc", "next": tab})
    assert response.status_code == 302 and response["Location"] == tab
    cookie = response.cookies[ZONE_COOKIE]
    assert cookie.value == "utc" and cookie["max-age"] >= 365 * 86400 and cookie["samesite"] == "Lax"

    for page in (tab, f"/clients/{acme.client.pk}/", "/clients/"):
        html = manager.get(page).content.decode()
        assert spell(event.occurred_at, UTC) in html, page
        assert spell(event.occurred_at, NEW_YORK) not in html, page
    assert '<option value="utc" selected>UTC</option>' in manager.get(tab).content.decode()


def test_staff_choose_their_browsers_zone(acme):
    event = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
    manager = signed_in("manager@acme.test")
    response = manager.post("/clients/time-zone/", {"zone": "browser", "browser_zone": "Asia/Kolkata"})
    assert response.cookies[ZONE_COOKIE].value == "browser:Asia/Kolkata"
    html = manager.get(f"/clients/{acme.client.pk}/activity/").content.decode()
    assert spell(event.occurred_at, ZoneInfo("Asia/Kolkata")) in html
    assert "Your browser: Asia/Kolkata" in html


@pytest.mark.parametrize(
    "data",
    [{}, {"zone": "mars"}, {"zone": "browser"}, {"zone": "browser", "browser_zone": "Not/AZone"},
     {"zone": "browser", "browser_zone": "x" * 500}],
)
def test_a_bad_zone_choice_is_a_clear_400_and_changes_nothing(acme, data):
    manager = signed_in("manager@acme.test")
    response = manager.post("/clients/time-zone/", data)
    assert response.status_code == 400
    assert response.content and ZONE_COOKIE not in response.cookies


def test_the_zone_switch_goes_back_only_to_this_site(acme):
    manager = signed_in("manager@acme.test")
    response = manager.post("/clients/time-zone/", {"zone": "utc", "next": "https://evil.test/phish"})
    assert response["Location"] == "/clients/"


def test_the_zone_switch_is_for_staff_only(acme):
    assert BrowserClient().post("/clients/time-zone/", {"zone": "utc"}).status_code == 302  # to the login
    portal = BrowserClient()
    portal.force_login(acme.portal_user)
    response = portal.post("/clients/time-zone/", {"zone": "utc"})
    assert response.status_code == 302 and ZONE_COOKIE not in response.cookies
    assert signed_in("manager@acme.test").get("/clients/time-zone/").status_code == 405


@pytest.mark.django_db(transaction=True)
async def test_a_socket_pushes_rows_in_the_zone_its_viewer_chose(acme):
    socket = await opened(acme.client.pk, acme.manager, cookies="tz=utc")
    event = await database_sync_to_async(auth_event_record)(user=acme.portal_user, event_type=EventType.LOGIN)
    await database_sync_to_async(live.wait_for_publishes)()
    html = await socket.comm.receive_from(timeout=WITHIN)
    assert f">{spell(event.occurred_at, UTC)}</time>" in html
    await socket.disconnect()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("server_passwords")
def test_in_the_browser_the_zone_choice_holds_and_times_show_utc_and_local_on_hover(browser, acme):
    from playwright.sync_api import expect

    event = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
    with asgi_server(log_path=_log("server-clock")) as url:
        context = browser.new_context(timezone_id="Asia/Kolkata", viewport={"width": 1366, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/login/?next=/clients/{acme.client.pk}/activity/")
        page.fill("#id_username", "manager@acme.test")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        stamp = page.locator(f"#event-{event.pk} time.stamp")
        expect(stamp).to_have_text(spell(event.occurred_at, NEW_YORK))
        page.wait_for_load_state("load")  # app.js is deferred: it listens from here on

        stamp.focus()  # the keyboard gets the tooltip too
        local = f"{event.occurred_at.astimezone(ZoneInfo('Asia/Kolkata')):%Y-%m-%d %H:%M:%S} GMT+5:30"
        expect(stamp).to_have_attribute("title", re.compile(f"Your time: {re.escape(local)}$"))
        assert spell(event.occurred_at, UTC) in stamp.get_attribute("title")

        page.select_option("select[name=zone]", "browser")
        expect(stamp).to_have_text(spell(event.occurred_at, ZoneInfo("Asia/Kolkata")))
        page.goto(f"{url}/clients/")  # another page, later: the choice holds
        expect(page.locator("select[name=zone]")).to_have_value("browser")
        expect(page.locator("time.stamp").first).to_have_text(spell(event.occurred_at, ZoneInfo("Asia/Kolkata")))

        # "How long ago" in the browser uses the server's words, unit for unit.
        for seconds in (0, 59, 60, 3599, 3600, 86400, 30 * 86400, 365 * 86400, 800 * 86400):
            now = datetime(2026, 11, 27, 12, tzinfo=UTC)
            then = now - timedelta(seconds=seconds)
            in_browser = page.evaluate("([then, now]) => ago(Date.parse(then), Date.parse(now))",
                                       [then.isoformat(), now.isoformat()])
            assert in_browser == ago(then, now), seconds
        context.close()


def test_djangos_own_displays_spell_times_the_same_way(client, acme, root):
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    entry = LogEntry.objects.create(
        user=root, content_type=ContentType.objects.get_for_model(acme.client), object_id=str(acme.client.pk),
        object_repr=acme.client.name, action_flag=CHANGE, change_message="",
    )
    client.force_login(root)
    html = client.get(f"/admin/clients/client/{acme.client.pk}/history/").content.decode()
    assert spell(entry.action_time, UTC) in html  # admin's superusers read UTC
