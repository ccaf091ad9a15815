"""
Security signals on the Activity Log (issue 10): why can't they get in?

New IP and New device marks, bursts of failures and lockouts that stand out in the list,
the summary's failed sign-ins, and a row that expands to its details, for those who may
read the log and nobody else. The browser half (real Chromium, axe, screenshots) is at
the end.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activitylog import live
from activitylog.models import AuthEvent, EventType, FailureReason, PortalSession
from activitylog.rows import spell_duration
from activitylog.security import SAME_IP_LIMIT
from activitylog.services import auth_event_record
from clients.models import Client
from tests.conftest import CHROME_UA, PASSWORD, make_user, portal_login
from tests.servers import asgi_server
from tests.test_accessibility import _signed_in, _violations
from tests.test_browser import ARTIFACTS, _log

HTMX = {"HTTP_HX_REQUEST": "true"}
FIREFOX_MAC_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0"
CHROME_132_UA = CHROME_UA.replace("Chrome/131", "Chrome/132")
T0 = datetime(2026, 3, 14, 15, 0, 0, tzinfo=UTC)


def record(user, event_type=EventType.LOGIN, *, at, ip="203.0.113.7", ua=CHROME_UA, **extra):
    return auth_event_record(user=user, event_type=event_type, occurred_at=at, ip=ip, user_agent=ua, **extra)


def fail(user, *, at, ip="203.0.113.7", reason=FailureReason.BAD_PASSWORD, **extra):
    return record(user, EventType.LOGIN_FAILED, at=at, ip=ip, reason=reason, **extra)


def tab(client, people, query="") -> str:
    response = client.get(f"/clients/{people.client.pk}/activity/{query}")
    assert response.status_code == 200
    return response.content.decode()


def row(html: str, event) -> str:
    """The `<tr>` of one event in the page."""
    match = re.search(rf'<tr id="event-{event.pk}" .*?</tr>', html, re.S)
    assert match, f"no row for event {event.pk}"
    return match.group(0)


def marks(html: str, event) -> list[str]:
    return re.findall(r'<span class="badge badge-(?:new|burst|lockout)">([^<]+)</span>', row(html, event))


def details_url(people, event) -> str:
    return f"/clients/{people.client.pk}/activity/events/{event.pk}/"


@pytest.fixture
def manager(client, acme):
    client.force_login(acme.manager)
    return client


# New IP, new device ---------------------------------------------------------------


def test_a_first_login_is_marked_new_ip_and_new_device(manager, acme):
    first = record(acme.portal_user, at=T0)
    assert marks(tab(manager, acme), first) == ["New IP", "New device"]


def test_a_login_from_a_known_ip_and_device_is_not_marked(manager, acme):
    record(acme.portal_user, at=T0)
    again = record(acme.portal_user, at=T0 + timedelta(days=3))
    assert marks(tab(manager, acme), again) == []


def test_a_new_ip_and_a_new_browser_are_marked_separately(manager, acme):
    record(acme.portal_user, at=T0)
    other_ip = record(acme.portal_user, at=T0 + timedelta(days=1), ip="198.51.100.20")
    other_device = record(acme.portal_user, at=T0 + timedelta(days=2), ua=FIREFOX_MAC_UA)

    html = tab(manager, acme)

    assert marks(html, other_ip) == ["New IP"]
    assert marks(html, other_device) == ["New device"]


def test_a_browser_update_is_not_a_new_device(manager, acme):
    record(acme.portal_user, at=T0)
    updated = record(acme.portal_user, at=T0 + timedelta(days=30), ua=CHROME_132_UA)
    assert updated.browser == "Chrome 132"
    assert marks(tab(manager, acme), updated) == []


def test_what_counts_as_known_is_this_users_own_earlier_successful_logins(manager, acme):
    # Another user's login from the IP, and this user's failure from it, teach nothing;
    # a later login does not make an earlier one known.
    record(acme.portal_member, at=T0)
    fail(acme.portal_user, at=T0 + timedelta(minutes=1))
    login = record(acme.portal_user, at=T0 + timedelta(minutes=2))
    record(acme.portal_user, at=T0 + timedelta(minutes=3))

    html = tab(manager, acme)

    assert marks(html, login) == ["New IP", "New device"]


def test_a_failure_from_an_ip_the_user_never_signed_in_from_is_marked_new(manager, acme):
    record(acme.portal_user, at=T0)
    stranger = fail(acme.portal_user, at=T0 + timedelta(hours=1), ip="192.0.2.66", reason=FailureReason.BAD_PASSWORD)
    assert marks(tab(manager, acme), stranger) == ["New IP"]


def test_logouts_and_expiries_carry_no_new_marks(manager, acme):
    record(acme.portal_user, at=T0, session_ref="a" * 64)
    logout = record(acme.portal_user, EventType.LOGOUT, at=T0 + timedelta(minutes=5), session_ref="a" * 64,
                    ip="198.51.100.1")
    assert marks(tab(manager, acme), logout) == []


# Bursts and lockouts ---------------------------------------------------------------


def test_five_failures_within_ten_minutes_are_each_marked_as_a_burst(manager, acme):
    burst = [fail(acme.portal_user, at=T0 + timedelta(minutes=2 * n)) for n in range(5)]

    html = tab(manager, acme)

    for event in burst:
        assert "Burst of failures" in marks(html, event)
        assert 'data-alert="burst"' in row(html, event)


def test_four_failures_are_no_burst(manager, acme):
    few = [fail(acme.portal_user, at=T0 + timedelta(minutes=n)) for n in range(4)]
    html = tab(manager, acme)
    assert all("Burst of failures" not in marks(html, e) and "data-alert" not in row(html, e) for e in few)


def test_failures_spread_over_half_an_hour_are_no_burst(manager, acme):
    # Six minutes apart: no window of ten minutes either side of any of them holds five.
    spread = [fail(acme.portal_user, at=T0 + timedelta(minutes=6 * n)) for n in range(5)]
    html = tab(manager, acme)
    assert all("Burst of failures" not in marks(html, e) for e in spread)


def test_failures_for_many_users_from_one_ip_are_a_burst(manager, acme):
    others = [make_user(f"user{n}@acme.test", client=acme.client) for n in range(4)]
    spray = [fail(user, at=T0 + timedelta(minutes=n), ip="192.0.2.99")
             for n, user in enumerate([acme.portal_user, *others])]
    html = tab(manager, acme)
    assert all("Burst of failures" in marks(html, e) for e in spray)


def test_a_burst_counts_only_this_clients_failures(manager, acme, globex):
    # Four failures here and many from the same IP at another agency's client: no burst.
    ours = [fail(acme.portal_user, at=T0 + timedelta(minutes=n), ip="192.0.2.99") for n in range(4)]
    for n in range(6):
        fail(globex.portal_user, at=T0 + timedelta(minutes=n), ip="192.0.2.99")
    html = tab(manager, acme)
    assert all("Burst of failures" not in marks(html, e) for e in ours)


def test_a_lockout_through_the_sign_in_page_stands_out(manager, client, acme, settings):
    settings.AXES_FAILURE_LIMIT = 5
    from django.test import Client as HttpClient

    visitor = HttpClient()
    for _ in range(7):
        portal_login(visitor, "client@acme.test", "wrong-password", REMOTE_ADDR="203.0.113.9",
                     HTTP_USER_AGENT=CHROME_UA)
    failures = list(AuthEvent.objects.filter(client=acme.client).order_by("seq"))
    *wrong, lockout = failures
    assert [e.reason for e in wrong] == [FailureReason.BAD_PASSWORD] * 5 and lockout.reason == FailureReason.LOCKED_OUT

    html = tab(manager, acme)

    assert marks(html, lockout) == ["Locked out"]
    assert 'data-alert="lockout"' in row(html, lockout)
    # The five failures that led to it are a burst of their own.
    assert all("Burst of failures" in marks(html, e) for e in wrong)


# The summary -------------------------------------------------------------------------


def test_the_summary_counts_failed_sign_ins_of_the_last_7_days_without_lockouts(manager, acme, globex):
    now = timezone.now()
    for days in (1, 2, 6):
        fail(acme.portal_user, at=now - timedelta(days=days))
    fail(acme.portal_user, at=now - timedelta(days=8))  # too old
    fail(acme.portal_user, at=now - timedelta(hours=1), reason=FailureReason.LOCKED_OUT)
    fail(globex.portal_user, at=now - timedelta(hours=2))  # another agency's client
    record(acme.portal_user, at=now - timedelta(hours=3))

    html = tab(manager, acme)

    assert re.search(r'Failed sign-ins, last 7 days</dt><dd><span id="summary-failed-7d">3</span>', html)
    assert "1 lockout</span>" in html


def test_the_summary_shows_the_last_failed_attempt_with_its_reason_and_user(manager, acme):
    now = timezone.now()
    fail(acme.portal_user, at=now - timedelta(days=2))
    fail(acme.portal_member, at=now - timedelta(hours=5), reason=FailureReason.ACCOUNT_INACTIVE)
    record(acme.portal_user, at=now - timedelta(hours=1))

    summary = re.search(r'<dd id="summary-last-failure">(.*?)</dd>', tab(manager, acme), re.S).group(1)

    assert "5 hours ago" in summary
    assert "Portal account deactivated · member@acme.test" in summary


def test_a_client_without_failures_says_none(manager, acme):
    record(acme.portal_user, at=T0)
    html = tab(manager, acme)
    assert '<span id="summary-failed-7d">0</span>' in html
    assert re.search(r'<dd id="summary-last-failure"><span class="muted">None</span></dd>', html)


# Cost ------------------------------------------------------------------------------


def _queries_of_first_page(client, people) -> int:
    with CaptureQueriesContext(connection) as queries:
        tab(client, people)
    return len(queries)


def test_the_signals_cost_the_same_number_of_queries_for_any_number_of_rows(manager, acme):
    fail(acme.portal_user, at=T0)
    few = _queries_of_first_page(manager, acme)
    for n in range(1, 40):
        kind = EventType.LOGIN if n % 3 else EventType.LOGIN_FAILED
        reason = FailureReason.BAD_PASSWORD if kind == EventType.LOGIN_FAILED else ""
        record(acme.portal_user, kind, at=T0 + timedelta(minutes=n), ip=f"198.51.100.{n}", reason=reason)
    assert _queries_of_first_page(manager, acme) == few


def test_a_live_row_carries_its_marks(acme):
    record(acme.portal_user, at=T0)
    stranger = fail(acme.portal_user, at=T0 + timedelta(hours=1), ip="192.0.2.66")
    html = live.render_row(AuthEvent.objects.get(pk=stranger.pk), UTC)
    assert '<span class="badge badge-new">New IP</span>' in html
    assert f'href="/clients/{acme.client.pk}/activity/events/{stranger.pk}/"' in html


# Expanding a row -------------------------------------------------------------------------


def test_every_row_has_a_disclosure_button_that_is_also_a_link(manager, acme):
    event = record(acme.portal_user, at=T0)
    html = row(tab(manager, acme), event)
    url = details_url(acme, event)
    assert f'href="{url}"' in html and f'hx-get="{url}"' in html
    assert 'role="button"' in html and 'aria-expanded="false"' in html
    assert f'aria-controls="event-{event.pk}-details"' in html


def test_the_details_row_shows_the_full_user_agent_both_times_and_the_session(manager, acme):
    login = record(acme.portal_user, at=T0, session_ref="b" * 64)
    record(acme.portal_user, EventType.LOGOUT, at=T0 + timedelta(hours=1, minutes=23, seconds=4), session_ref="b" * 64)

    response = manager.get(details_url(acme, login), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith(f'<tr id="event-{login.pk}-details" class="event-details">')
    assert CHROME_UA in html
    assert "2026-03-14 11:00:00 EDT" in html and "2026-03-14 15:00:00 UTC" in html  # agency zone, and UTC
    assert "Logged out at 2026-03-14 12:23:04 EDT, after 1 h 23 min." in html


def test_a_logout_shows_its_login_and_the_sessions_length(manager, acme):
    record(acme.portal_user, at=T0, session_ref="c" * 64)
    logout = record(acme.portal_user, EventType.LOGOUT, at=T0 + timedelta(minutes=12, seconds=5), session_ref="c" * 64)
    html = manager.get(details_url(acme, logout), **HTMX).content.decode()
    assert "Signed in at 2026-03-14 11:00:00 EDT; the session lasted 12 min 5 s." in html


def test_an_expiry_shows_its_login_and_why_it_ended(manager, acme):
    login = record(acme.portal_user, at=T0, session_ref="d" * 64)
    record(acme.portal_user, EventType.SESSION_EXPIRED, at=T0 + timedelta(hours=12), session_ref="d" * 64,
           reason="max_age")
    html = manager.get(details_url(acme, login), **HTMX).content.decode()
    assert "Expired (Maximum session length reached) at 2026-03-14 23:00:00 EDT, after 12 h." in html


def test_an_open_session_says_so(manager, acme):
    login = record(acme.portal_user, at=timezone.now() - timedelta(minutes=30), session_ref="e" * 64)
    PortalSession.objects.create(session_ref="e" * 64, user=acme.portal_user, started_at=login.occurred_at,
                                 expires_at=timezone.now() + timedelta(hours=1), expiry_reason="idle_timeout")
    html = manager.get(details_url(acme, login), **HTMX).content.decode()
    assert "Still signed in, for 30 min" in html


def test_a_failure_shows_its_reason_and_explains_its_signals(manager, acme):
    failures = [fail(acme.portal_user, at=T0 + timedelta(minutes=n), ip="192.0.2.66") for n in range(5)]
    html = manager.get(details_url(acme, failures[-1]), **HTMX).content.decode()
    assert "<dt>Reason</dt><dd>Wrong password</dd>" in html
    assert "None: the sign-in failed." in html
    assert "Burst of failures: at least 5 failed sign-ins for this user, or from this IP, within 10 minutes" in html
    assert "New IP: client@acme.test had never signed in from 192.0.2.66 before." in html
    assert "New device: client@acme.test had never signed in with Chrome on Windows before." in html


def test_other_events_from_the_same_ip_are_the_nearest_ten_of_this_client_within_7_days(manager, acme, globex):
    event = record(acme.portal_user, at=T0)
    near = [fail(acme.portal_member, at=T0 + timedelta(hours=n), ip="203.0.113.7") for n in (-3, -1, 1, 2)]
    far = fail(acme.portal_member, at=T0 - timedelta(days=8), ip="203.0.113.7")
    other_ip = fail(acme.portal_member, at=T0 + timedelta(minutes=5), ip="198.51.100.5")
    sibling = Client.objects.create(agency=acme.agency, name="Sibling", email="s@sibling.test")
    stranger = make_user("someone@sibling.test", client=sibling)
    fail(stranger, at=T0 + timedelta(minutes=1), ip="203.0.113.7")
    fail(globex.portal_user, at=T0 + timedelta(minutes=2), ip="203.0.113.7")

    html = manager.get(details_url(acme, event), **HTMX).content.decode()
    listed = re.search(r'<ul class="plain-list same-ip">(.*?)</ul>', html, re.S).group(1)

    assert listed.count("<li>") == len(near)
    assert "member@acme.test" in listed
    assert "someone@sibling.test" not in listed and "client@globex.test" not in listed
    assert far.occurred_at.isoformat() not in listed and other_ip.occurred_at.isoformat() not in listed


def test_the_same_ip_list_is_bounded(manager, acme):
    event = record(acme.portal_user, at=T0)
    for n in range(1, 30):
        fail(acme.portal_member, at=T0 + timedelta(minutes=n) * (1 if n % 2 else -1), ip="203.0.113.7")
    html = manager.get(details_url(acme, event), **HTMX).content.decode()
    listed = re.search(r'<ul class="plain-list same-ip">(.*?)</ul>', html, re.S).group(1)
    assert listed.count("<li>") == SAME_IP_LIMIT


def test_without_javascript_the_details_are_a_page_of_the_activity_log_tab(manager, acme):
    event = record(acme.portal_user, at=T0)
    response = manager.get(details_url(acme, event))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith("<!doctype html>")
    assert 'aria-selected="true"' in html and "Back to the Activity Log" in html
    assert CHROME_UA in html


# Who may expand a row ------------------------------------------------------------------


@pytest.mark.parametrize("role", ["super_admin", "admin", "manager"])
def test_log_roles_see_the_details(client, acme, role):
    event = record(acme.portal_user, at=T0)
    client.force_login(acme.staff(role))
    assert client.get(details_url(acme, event), **HTMX).status_code == 200


def test_an_employee_is_refused(client, acme):
    event = record(acme.portal_user, at=T0)
    client.force_login(acme.employee)
    assert client.get(details_url(acme, event)).status_code == 403
    assert client.get(details_url(acme, event), **HTMX).status_code == 403


def test_another_agencys_manager_gets_404(client, acme, globex):
    event = record(acme.portal_user, at=T0)
    client.force_login(globex.manager)
    assert client.get(details_url(acme, event)).status_code == 404
    # Nor through their own client's URL.
    assert client.get(f"/clients/{globex.client.pk}/activity/events/{event.pk}/").status_code == 404


def test_an_event_of_another_client_of_the_agency_is_404_under_this_clients_url(manager, acme):
    sibling = Client.objects.create(agency=acme.agency, name="Sibling", email="s@sibling.test")
    theirs = record(make_user("someone@sibling.test", client=sibling), at=T0)
    assert manager.get(details_url(acme, theirs)).status_code == 404
    assert manager.get(f"/clients/{sibling.pk}/activity/events/{theirs.pk}/").status_code == 200


@pytest.mark.parametrize("event_id", ["999999", "9" * 30, "0"])
def test_an_unknown_event_is_404(manager, acme, event_id):
    assert manager.get(f"/clients/{acme.client.pk}/activity/events/{event_id}/").status_code == 404


@pytest.mark.parametrize("path", ["abc/", "-1/", "1.5/", "%00/"])
def test_a_malformed_event_id_is_404(manager, acme, path):
    assert manager.get(f"/clients/{acme.client.pk}/activity/events/{path}").status_code == 404


def test_a_portal_user_is_sent_to_the_portal(client, acme):
    event = record(acme.portal_user, at=T0)
    client.post("/portal/login/", {"username": "client@acme.test", "password": PASSWORD})
    response = client.get(details_url(acme, event))
    assert response.status_code == 302 and response["Location"] == "/portal/"


def test_an_anonymous_visitor_is_sent_to_sign_in(client, acme):
    event = record(acme.portal_user, at=T0)
    response = client.get(details_url(acme, event))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_only_get_is_allowed(manager, acme):
    event = record(acme.portal_user, at=T0)
    assert manager.post(details_url(acme, event)).status_code == 405


def test_durations_are_spelled_in_their_two_largest_units():
    spelled = [spell_duration(timedelta(seconds=s)) for s in (0, 45, 725, 12_004, 187_200, 86_400)]
    assert spelled == ["0 s", "45 s", "12 min 5 s", "3 h 20 min", "2 days 4 h", "1 day"]


# In a real browser ---------------------------------------------------------------------

WIDTHS = {"desktop": 1366, "phone": 390}


def _history(people) -> dict:
    """A week of a client's sign-ins with every signal in it, the newest a lockout."""
    now = timezone.now()
    user, member = people.portal_user, people.portal_member
    at = lambda **ago: now - timedelta(**ago)  # noqa: E731
    record(user, at=at(days=3), session_ref="f" * 64)
    record(user, EventType.LOGOUT, at=at(days=3) + timedelta(minutes=47), session_ref="f" * 64)
    record(member, at=at(days=2))
    new_device = record(user, at=at(hours=5), ip="198.51.100.23", ua=FIREFOX_MAC_UA, session_ref="9" * 64)
    burst = [fail(member, at=at(minutes=60 - n), ip="192.0.2.66") for n in range(5)]
    lockout = fail(member, at=at(minutes=55), ip="192.0.2.66", reason=FailureReason.LOCKED_OUT)
    return {"new_device": new_device, "burst": burst, "lockout": lockout}


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("server_passwords")
def test_in_chromium_the_signals_stand_out_and_a_row_expands_in_place(browser, acme, width):
    from playwright.sync_api import expect

    events = _history(acme)
    lockout = events["lockout"]
    with asgi_server(log_path=_log(f"server-signals-{width}")) as url:
        page = _signed_in(browser, url, width, "/login/", "manager@acme.test")
        page.goto(f"{url}/clients/{acme.client.pk}/activity/")
        page.wait_for_selector('#activity-live-status[data-state="live"]')

        expect(page.locator(f"#event-{lockout.pk} .marks")).to_have_text("Locked out")
        for failure in events["burst"]:
            expect(page.locator(f"#event-{failure.pk} .marks")).to_contain_text("Burst of failures")
        expect(page.locator(f"#event-{events['new_device'].pk} .marks")).to_have_text("New IPNew device")
        expect(page.locator("#summary-failed-7d")).to_have_text("5")
        expect(page.locator("#summary-last-failure")).to_contain_text("Locked out after too many failures")
        page.screenshot(path=str(ARTIFACTS / f"signals-{width}.png"), full_page=True)
        assert _violations(page) == []

        toggle = page.locator(f"#event-{lockout.pk} .row-toggle")
        toggle.click()
        details = page.locator(f"#event-{lockout.pk}-details")
        expect(details).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(details).to_contain_text(CHROME_UA)
        expect(details).to_contain_text("Locked out: too many failed sign-ins")
        expect(details.locator(".same-ip li")).to_have_count(5)
        page.screenshot(path=str(ARTIFACTS / f"signals-expanded-{width}.png"), full_page=True)
        page.evaluate(f"document.getElementById('event-{lockout.pk}').scrollIntoView()")
        page.screenshot(path=str(ARTIFACTS / f"signals-expanded-{width}-at-row.png"))
        assert _violations(page) == []

        # From the keyboard: Space hides it and Enter shows it again, without asking the server.
        with page.expect_request("**/events/**") as never:
            toggle.focus()
            page.keyboard.press("Space")
            expect(details).to_be_hidden()
            expect(toggle).to_have_attribute("aria-expanded", "false")
            page.keyboard.press("Enter")
            expect(details).to_be_visible()
            expect(toggle).to_have_attribute("aria-expanded", "true")
            page.evaluate("fetch(location.pathname + 'events/%d/')" % lockout.pk)  # ends the wait
        assert never.value.resource_type == "fetch"  # the toggles sent no request of their own

        # The same details as a page of their own (the link, without JavaScript).
        page.goto(f"{url}/clients/{acme.client.pk}/activity/events/{lockout.pk}/")
        page.screenshot(path=str(ARTIFACTS / f"signals-event-page-{width}.png"), full_page=True)
        assert _violations(page) == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("server_passwords")
def test_in_chromium_a_live_failed_sign_in_arrives_marked_and_counted(browser, acme):
    from playwright.sync_api import expect

    from tests.test_browser import LIVE_WITHIN_MS, portal_page, staff_tab

    record(acme.portal_user, at=timezone.now() - timedelta(days=1), ip="127.0.0.1")  # where Chromium comes from
    with asgi_server(log_path=_log("server-signals-live")) as url:
        tab = staff_tab(browser, url, "manager@acme.test", acme.client.pk)
        expect(tab.locator("#summary-failed-7d")).to_have_text("0")

        visitor = portal_page(browser, url, "client@acme.test")
        visitor.fill("#id_password", "not-the-password")
        visitor.click("button[type=submit]")

        newest = tab.locator("#activity-rows tr.event").first
        expect(newest).to_have_class("event event-login_failed event-new", timeout=LIVE_WITHIN_MS)
        expect(newest.locator(".marks")).to_have_text("New device")  # HeadlessChrome, not the Chrome of before
        expect(tab.locator("#summary-failed-7d")).to_have_text("1")
        expect(tab.locator("#summary-last-failure")).to_contain_text("Wrong password · client@acme.test")
        newest.locator(".row-toggle").click()
        expect(tab.locator("tr.event-details")).to_contain_text("None: the sign-in failed.")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("server_passwords")
def test_without_javascript_details_opens_the_events_page(browser, acme):
    event = _history(acme)["new_device"]
    with asgi_server(log_path=_log("server-signals-nojs")) as url:
        context = browser.new_context(java_script_enabled=False, viewport={"width": 1366, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/login/")
        page.fill("#id_username", "manager@acme.test")
        page.fill("#id_password", PASSWORD)
        page.click("[type=submit]")
        page.goto(f"{url}/clients/{acme.client.pk}/activity/")
        page.click(f"#event-{event.pk} .row-toggle")
        page.wait_for_url(f"**/activity/events/{event.pk}/")
        assert FIREFOX_MAC_UA in page.content()
        assert "New device: client@acme.test had never signed in with Firefox on Mac OS X before." in page.content()
