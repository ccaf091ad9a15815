"""Portal logins, logouts and failed logins reach the log exactly once, with the right details."""

import hashlib
import logging
import tempfile
from contextlib import contextmanager, nullcontext

import pytest
from django.db import connection
from django.utils import timezone
from psycopg import pq

from activitylog.models import AuthEvent, EventType, FailureReason
from clients.models import ClientStatus, User
from tests.conftest import CHROME_UA, PASSWORD, portal_login, portal_logout


def events():
    return list(AuthEvent.objects.order_by("id"))


def test_a_portal_login_is_recorded_once_with_its_details(client, acme):
    response = portal_login(client, "client@acme.test", HTTP_USER_AGENT=CHROME_UA, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 302
    assert response.url == "/portal/"
    [event] = events()
    assert event.event_type == EventType.LOGIN
    assert event.client == acme.client
    assert event.agency == acme.agency
    assert event.user == acme.portal_user
    assert event.email == "client@acme.test"
    assert event.ip == "203.0.113.9"
    assert event.user_agent == CHROME_UA
    assert (event.browser, event.os) == ("Chrome 131", "Windows 10")
    assert event.occurred_at.tzinfo is not None
    assert event.seq == 1


def test_the_session_reference_is_a_hash_of_the_session_key_never_the_key(client, acme):
    portal_login(client, "client@acme.test")
    session_key = client.session.session_key
    [event] = events()

    assert session_key not in event.session_ref
    assert event.session_ref == hashlib.sha256(session_key.encode()).hexdigest()


def test_a_logout_is_recorded_and_paired_with_its_login(client, acme):
    portal_login(client, "client@acme.test")
    response = portal_logout(client)

    assert response.status_code == 302
    login, logout = events()
    assert logout.event_type == EventType.LOGOUT
    assert logout.session_ref == login.session_ref != ""
    assert logout.seq == 2 and logout.prev_hash == login.hash


def test_logout_needs_a_post(client, acme):
    portal_login(client, "client@acme.test")
    assert client.get("/portal/logout/").status_code == 405
    assert [e.event_type for e in events()] == [EventType.LOGIN]


def test_every_member_of_a_client_logs_to_the_same_client(client, acme):
    portal_login(client, "member@acme.test")
    [event] = events()
    assert event.client == acme.client
    assert event.user == acme.portal_member


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, FailureReason.BAD_PASSWORD),
        ({"user.is_active": False}, FailureReason.ACCOUNT_INACTIVE),
        ({"client.is_archived": True}, FailureReason.CLIENT_ARCHIVED),
        ({"client.status": ClientStatus.INACTIVE}, FailureReason.CLIENT_INACTIVE),
    ],
)
def test_a_failed_login_is_recorded_with_its_reason(client, acme, change, reason):
    for path, value in change.items():
        target, field = path.split(".")
        obj = acme.portal_user if target == "user" else acme.client
        setattr(obj, field, value)
        obj.save()
    password = "wrong-password" if reason == FailureReason.BAD_PASSWORD else PASSWORD

    response = portal_login(client, "client@acme.test", password)

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    [event] = events()
    assert (event.event_type, event.reason) == (EventType.LOGIN_FAILED, reason)
    assert event.session_ref == ""


def test_a_blocked_client_cannot_sign_in_even_with_the_right_password(client, acme):
    acme.client.is_archived = True
    acme.client.save()
    portal_login(client, "client@acme.test")
    assert client.get("/portal/").status_code == 302


def test_a_failed_login_for_an_unknown_email_goes_to_the_server_log_only(client, acme, caplog):
    with caplog.at_level(logging.WARNING, logger="activitylog"):
        portal_login(client, "nobody@nowhere.test", REMOTE_ADDR="198.51.100.4")

    assert events() == []
    assert "nobody@nowhere.test" in caplog.text and "198.51.100.4" in caplog.text


def test_staff_logins_and_failures_are_not_client_events(client, acme):
    assert client.post("/login/", {"username": "manager@acme.test", "password": PASSWORD}).status_code == 302
    client.post("/logout/")
    client.post("/login/", {"username": "manager@acme.test", "password": "wrong"})
    assert events() == []


def test_a_staff_account_cannot_sign_in_to_the_portal(client, acme):
    response = portal_login(client, "manager@acme.test")
    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert events() == []


def test_a_portal_user_cannot_sign_in_as_staff(client, acme):
    response = client.post("/login/", {"username": "client@acme.test", "password": PASSWORD})
    assert response.status_code == 200
    assert "client portal account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_emails_are_matched_without_regard_to_case(client, acme):
    portal_login(client, "Client@ACME.test")
    assert [e.event_type for e in events()] == [EventType.LOGIN]


def test_every_login_path_is_captured_through_the_auth_signals(client, acme):
    # force_login skips the form entirely; the signal still records it.
    client.force_login(acme.portal_user)
    assert [e.event_type for e in events()] == [EventType.LOGIN]


def _break_inserts():
    """Make the database refuse new events, the way a full disk or a lost lock would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_insert BEFORE INSERT ON activitylog_authevent "
                "FOR EACH ROW EXECUTE FUNCTION refuse_insert()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_insert BEFORE INSERT ON activitylog_authevent "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )


def test_a_login_that_cannot_be_recorded_does_not_happen(client, acme):
    _break_inserts()

    response = portal_login(client, "client@acme.test")

    assert response.status_code == 503
    assert "couldn" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/portal/").status_code == 302  # still signed out
    assert AuthEvent.objects.count() == 0


def test_a_login_that_cannot_be_recorded_leaves_nothing_behind(client, acme):
    """login()'s own writes (its session row, last_login) share the event's transaction."""
    from django.contrib.sessions.models import Session

    from clients.models import User

    last_login = User.objects.get(email="client@acme.test").last_login
    sessions = Session.objects.count()
    _break_inserts()

    assert portal_login(client, "client@acme.test").status_code == 503

    assert User.objects.get(email="client@acme.test").last_login == last_login
    assert Session.objects.count() == sessions


def test_a_logout_that_cannot_be_recorded_keeps_the_session(client, acme):
    portal_login(client, "client@acme.test")
    _break_inserts()

    response = portal_logout(client)

    assert response.status_code == 503
    assert client.get("/portal/").status_code == 200  # still signed in, can retry
    assert [e.event_type for e in events()] == [EventType.LOGIN]


def test_the_same_session_cannot_be_logged_in_twice(acme):
    from django.db import IntegrityError

    from activitylog.services import ActivityLogUnavailable, auth_event_record

    auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, session_ref="a" * 64)
    with pytest.raises(ActivityLogUnavailable) as excinfo:
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, session_ref="a" * 64)
    assert isinstance(excinfo.value.__cause__, IntegrityError)
    assert AuthEvent.objects.count() == 1


def test_the_user_agent_is_stored_with_a_bounded_length(client, acme):
    portal_login(client, "client@acme.test", HTTP_USER_AGENT="X" * 5000)
    [event] = events()
    assert len(event.user_agent) == 512


@contextmanager
def _round_trips():
    """Count the times the client sends and then waits for PostgreSQL's answer (libpq's protocol trace)."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    counted: list[int] = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield lambda: counted[0]
        finally:
            pgconn.untrace()
            trace.seek(0)
            senders = [line[0] for line in trace if line[:1] in ("F", "B")]
            counted.append(sum(1 for before, now in zip(senders, senders[1:], strict=False) if (before, now) == ("F", "B")))


@pytest.mark.parametrize("inside_the_login_view", [False, True], ids=["alone", "in-fail-closed-transaction"])
@pytest.mark.django_db(transaction=True)
def test_recording_a_login_and_its_session_costs_two_round_trips(acme, rf, inside_the_login_view):
    """
    BEGIN, the lock and the head; then both inserts and COMMIT (services.recording_transaction).
    Inside the login view's fail_closed_transaction: no SAVEPOINT and RELEASE around the event either.
    """
    if connection.vendor != "postgresql":
        pytest.skip("the round trips of psycopg's pipeline mode are a PostgreSQL matter")
    from django.contrib.sessions.backends.db import SessionStore

    from activitylog.models import PortalSession
    from activitylog.sessions import portal_session_start
    from agencyhandy.unavailable import fail_closed_transaction

    request = rf.post("/portal/login/")
    request.session = SessionStore()
    request.session.create()
    with fail_closed_transaction() if inside_the_login_view else nullcontext():
        if inside_the_login_view:
            User.objects.filter(pk=acme.portal_user.pk).update(last_login=timezone.now())  # as login() does first
        with _round_trips() as round_trips:
            event = portal_session_start(request=request, user=acme.portal_user)
    assert round_trips() == 2
    assert [e.pk for e in events()] == [event.pk]
    assert PortalSession.objects.filter(session_ref=event.session_ref).exists()
