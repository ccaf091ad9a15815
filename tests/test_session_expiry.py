"""
A portal session that ends without a logout (idle timeout, maximum age, a password change)
is logged as session_expired at the moment it ended, exactly once, even with several
record_session_expiries running at once, and the Activity Log tab shows which login it
closed.
"""

import threading
from datetime import UTC, timedelta
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import IntegrityError, connections
from django.test import Client
from django.utils import timezone

from activitylog.models import AuthEvent, EventType, PortalSession, SessionEndReason
from activitylog.services import ActivityLogUnavailable, auth_event_record, session_ref_for
from activitylog.sessions import portal_session_refresh, portal_sessions_expire_due
from clients.clock import spell
from tests.conftest import CHROME_UA, PASSWORD, portal_login, portal_logout
from tests.sockets import WITHIN, opened
from tests.test_capture import _break_inserts


def signed_in(email: str = "client@acme.test", **headers) -> Client:
    browser = Client()
    assert portal_login(browser, email, **headers).status_code == 302
    return browser


def ref_of(browser: Client) -> str:
    return session_ref_for(browser.session.session_key)


def expiries() -> list[AuthEvent]:
    return list(AuthEvent.objects.filter(event_type=EventType.SESSION_EXPIRED).order_by("id"))


def run_command() -> str:
    out = StringIO()
    call_command("record_session_expiries", stdout=out)
    return out.getvalue()


def test_a_login_tracks_its_session_with_the_same_expiry_as_djangos_session(acme, settings):
    settings.PORTAL_SESSION_IDLE_TIMEOUT = 1800
    browser = signed_in(HTTP_USER_AGENT=CHROME_UA, REMOTE_ADDR="203.0.113.9")
    [login] = AuthEvent.objects.all()
    tracked = PortalSession.objects.get()

    assert tracked.session_ref == login.session_ref == ref_of(browser)
    assert tracked.started_at == login.occurred_at
    assert tracked.expires_at == login.occurred_at + timedelta(seconds=1800)
    assert tracked.expiry_reason == SessionEndReason.IDLE_TIMEOUT
    assert (tracked.ip, tracked.user_agent) == ("203.0.113.9", CHROME_UA)
    # Django stops accepting the session at exactly the moment that will be logged.
    assert Session.objects.get(session_key=browser.session.session_key).expire_date == tracked.expires_at


def test_a_session_ended_by_idle_timeout_is_logged_at_its_expiry(acme):
    browser = signed_in(HTTP_USER_AGENT=CHROME_UA, REMOTE_ADDR="203.0.113.9")
    tracked = PortalSession.objects.get()

    assert portal_sessions_expire_due(now=tracked.expires_at - timedelta(microseconds=1)) == 0
    assert portal_sessions_expire_due(now=tracked.expires_at) == 1

    login, expiry = AuthEvent.objects.order_by("seq")
    assert expiry.event_type == EventType.SESSION_EXPIRED
    assert expiry.occurred_at == tracked.expires_at
    assert expiry.reason == SessionEndReason.IDLE_TIMEOUT
    assert expiry.session_ref == login.session_ref == ref_of(browser)
    assert (expiry.ip, expiry.user_agent, expiry.browser) == ("203.0.113.9", CHROME_UA, "Chrome 131")
    assert expiry.prev_hash == login.hash
    assert not PortalSession.objects.exists()


def test_activity_pushes_the_idle_expiry_forward_in_both_places(acme, settings):
    settings.PORTAL_SESSION_IDLE_TIMEOUT = 1800
    browser = signed_in()
    first = PortalSession.objects.get().expires_at
    # Pretend the last refresh was long ago (the refresh runs at most once a minute).
    session = browser.session
    session["activitylog.refreshed_at"] = (timezone.now() - timedelta(minutes=5)).isoformat()
    session.save()

    assert browser.get("/portal/").status_code == 200

    later = PortalSession.objects.get().expires_at
    assert later > first
    assert Session.objects.get(session_key=session.session_key).expire_date == later


def test_requests_within_a_minute_do_not_rewrite_the_session(acme):
    browser = signed_in()
    before = PortalSession.objects.get().expires_at
    browser.get("/portal/")
    assert PortalSession.objects.get().expires_at == before


def test_the_maximum_age_caps_the_idle_expiry(acme, settings):
    settings.PORTAL_SESSION_IDLE_TIMEOUT = 3600
    settings.PORTAL_SESSION_MAX_AGE = 5400
    browser = signed_in()
    tracked = PortalSession.objects.get()
    session = browser.session

    # Active 50 minutes in: another idle hour would run past the 90-minute maximum.
    portal_session_refresh(session=session, now=tracked.started_at + timedelta(minutes=50))

    tracked.refresh_from_db()
    assert tracked.expires_at == tracked.started_at + timedelta(seconds=5400)
    assert tracked.expiry_reason == SessionEndReason.MAX_AGE
    assert portal_sessions_expire_due(now=tracked.expires_at) == 1
    assert expiries()[0].reason == SessionEndReason.MAX_AGE


def test_an_expired_session_is_not_revived_by_a_late_refresh(acme):
    browser = signed_in()
    tracked = PortalSession.objects.get()
    portal_session_refresh(session=browser.session, now=tracked.expires_at + timedelta(minutes=5))
    tracked.refresh_from_db()
    assert tracked.expires_at < timezone.now() + timedelta(hours=2)
    assert portal_sessions_expire_due(now=tracked.expires_at + timedelta(minutes=5)) == 1
    assert expiries()[0].occurred_at == tracked.expires_at


def test_a_logged_out_session_never_expires_in_the_log(acme):
    browser = signed_in()
    tracked = PortalSession.objects.get()
    portal_logout(browser)

    assert not PortalSession.objects.exists()
    assert portal_sessions_expire_due(now=tracked.expires_at + timedelta(days=1)) == 0
    assert [e.event_type for e in AuthEvent.objects.order_by("seq")] == [EventType.LOGIN, EventType.LOGOUT]


def test_the_command_is_idempotent_and_quiet_when_there_is_nothing_to_do(acme, settings):
    settings.PORTAL_SESSION_IDLE_TIMEOUT = 0  # expired the moment it began
    signed_in()
    signed_in("member@acme.test")

    assert run_command() == "Recorded 2 session expiries.\n"
    assert run_command() == ""
    assert len(expiries()) == 2


def test_the_unique_constraint_is_the_last_guard_against_a_double_expiry(acme, settings):
    settings.PORTAL_SESSION_IDLE_TIMEOUT = 0
    browser = signed_in()
    auth_event_record(user=acme.portal_user, event_type=EventType.SESSION_EXPIRED, session_ref=ref_of(browser),
                      reason=SessionEndReason.IDLE_TIMEOUT)
    with pytest.raises(ActivityLogUnavailable) as excinfo:
        auth_event_record(user=acme.portal_user, event_type=EventType.SESSION_EXPIRED, session_ref=ref_of(browser),
                          reason=SessionEndReason.IDLE_TIMEOUT)
    assert isinstance(excinfo.value.__cause__, IntegrityError)

    assert portal_sessions_expire_due() == 1  # ended, without a second event
    assert len(expiries()) == 1
    assert not PortalSession.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_record_each_expiry_exactly_once(acme, globex, settings):
    """Two record_session_expiries in parallel, each with its own database connection."""
    settings.PORTAL_SESSION_IDLE_TIMEOUT = 0
    for people in (acme, globex):
        for email in (people.portal_user.email, people.portal_member.email):
            for _ in range(10):
                signed_in(email)
    assert PortalSession.objects.count() == 40
    barrier = threading.Barrier(2)
    outputs, failures = [], []

    def cron_run() -> None:
        try:
            barrier.wait()
            outputs.append(run_command())
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connections.close_all()

    runs = [threading.Thread(target=cron_run) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()

    assert failures == []
    refs = [e.session_ref for e in expiries()]
    assert len(refs) == 40 and len(set(refs)) == 40
    assert sum(int(out.split()[1]) for out in outputs if out) == 40
    assert not PortalSession.objects.exists()
    out = StringIO()
    call_command("verify_activity_log", stdout=out)
    assert "All chains intact" in out.getvalue()


def test_a_password_change_elsewhere_ends_every_session_of_the_user_now(acme):
    phone, laptop = signed_in(), signed_in()
    other_user = signed_in("member@acme.test")
    before = timezone.now()

    acme.portal_user.set_password("a-new-password-123")
    acme.portal_user.save()

    ended = expiries()
    assert sorted(e.session_ref for e in ended) == sorted([ref_of(phone), ref_of(laptop)])
    assert all(e.reason == SessionEndReason.PASSWORD_CHANGED and e.occurred_at >= before for e in ended)
    assert list(PortalSession.objects.values_list("session_ref", flat=True)) == [ref_of(other_user)]
    # Django agrees: those sessions are over.
    assert phone.get("/portal/").status_code == 302
    assert other_user.get("/portal/").status_code == 200


@pytest.mark.urls("tests.urls_password_change")
def test_changing_your_own_password_keeps_this_session_and_ends_the_others(acme):
    phone, laptop = signed_in(), signed_in()
    phone_ref, laptop_ref = ref_of(phone), ref_of(laptop)

    response = laptop.post("/test/change-password/", {"password": "a-new-password-123", "keep": "1"})

    assert response.status_code == 200
    [ended] = expiries()
    assert ended.session_ref == phone_ref
    assert ref_of(laptop) != laptop_ref  # update_session_auth_hash gave it a new key
    assert laptop.get("/portal/").status_code == 200  # still signed in, under a new session key
    assert list(PortalSession.objects.values_list("session_ref", flat=True)) == [ref_of(laptop)]


@pytest.mark.urls("tests.urls_password_change")
def test_a_password_change_that_signs_this_session_out_too_logs_it_too(acme):
    phone, laptop = signed_in(), signed_in()
    refs = {ref_of(phone), ref_of(laptop)}

    laptop.post("/test/change-password/", {"password": "a-new-password-123"})

    assert {e.session_ref for e in expiries()} == refs
    assert len(expiries()) == 2
    assert laptop.get("/portal/").status_code == 302
    assert not PortalSession.objects.exists()


def test_a_session_that_had_already_expired_is_logged_at_its_expiry_not_at_the_change(acme):
    signed_in()
    tracked = PortalSession.objects.get()
    PortalSession.objects.update(expires_at=timezone.now() - timedelta(minutes=3))
    tracked.refresh_from_db()

    acme.portal_user.set_password("a-new-password-123")
    acme.portal_user.save()

    [ended] = expiries()
    assert (ended.occurred_at, ended.reason) == (tracked.expires_at, SessionEndReason.IDLE_TIMEOUT)


def test_a_password_change_that_cannot_be_logged_does_not_happen(acme):
    signed_in()
    _break_inserts()
    user = acme.portal_user
    user.set_password("a-new-password-123")

    with pytest.raises(ActivityLogUnavailable):
        user.save()

    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert PortalSession.objects.count() == 1


def test_saving_a_user_without_a_password_change_ends_nothing(acme):
    signed_in()
    acme.portal_user.full_name = "Renamed"
    acme.portal_user.save()
    signed_in()  # a login updates last_login
    assert expiries() == []
    assert PortalSession.objects.count() == 2


def test_a_login_that_cannot_be_recorded_tracks_no_session(client, acme):
    _break_inserts()
    assert portal_login(client, "client@acme.test").status_code == 503
    assert not PortalSession.objects.exists()


def test_the_tab_shows_the_expiry_and_the_login_it_closed(client, acme):
    browser = signed_in(HTTP_USER_AGENT=CHROME_UA)
    tracked = PortalSession.objects.get()
    portal_sessions_expire_due(now=tracked.expires_at)
    login, expiry = AuthEvent.objects.order_by("seq")
    assert login.session_ref == ref_of(browser)

    client.force_login(acme.manager)
    html = client.get(f"/clients/{acme.client.pk}/activity/").content.decode()

    row = html[html.index(f'<tr id="event-{expiry.pk}"'):]
    row = row[: row.index("</tr>")]
    assert 'class="badge badge-session_expired">Session expired<' in row
    assert "Idle timeout" in row
    assert f'Session from <a href="#event-{login.pk}">login at' in row
    assert f"login at {spell(login.occurred_at, acme.agency.tzinfo)}</a>" in row
    assert "Chrome 131" in row


def test_staff_sessions_are_not_tracked(client, acme):
    client.post("/login/", {"username": "manager@acme.test", "password": PASSWORD})
    acme.manager.set_password("a-new-password-123")
    acme.manager.save()
    assert not PortalSession.objects.exists() and AuthEvent.objects.count() == 0


def test_only_expiry_reasons_go_with_expiries(acme):
    with pytest.raises(ValueError, match="not a reason"):
        auth_event_record(user=acme.portal_user, event_type=EventType.SESSION_EXPIRED, reason="bad_password")
    with pytest.raises(ValueError, match="not a reason"):
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN_FAILED, reason="idle_timeout")
    assert AuthEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
async def test_an_expiry_recorded_by_the_command_reaches_an_open_tab_live(acme, settings):
    settings.PORTAL_SESSION_IDLE_TIMEOUT = 0
    await database_sync_to_async(signed_in)()
    socket = await opened(acme.client.pk, acme.manager)

    assert await database_sync_to_async(run_command)() == "Recorded 1 session expiries.\n"

    html = await socket.comm.receive_from(timeout=WITHIN)
    assert 'class="badge badge-session_expired">Session expired<' in html and "Idle timeout" in html
    # Recorded after the moment it carries: "how long ago" counts from that moment.
    expiry = await AuthEvent.objects.aget(event_type=EventType.SESSION_EXPIRED)
    assert f'data-ago="{expiry.occurred_at.astimezone(UTC).isoformat()}"' in html
    await socket.disconnect()
