"""
Failed sign-ins are throttled per account and IP (django-axes), on both login pages, and
the client's log shows a flood as its first failures and one lockout, not thousands of rows.
"""

import http.cookiejar
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activitylog.models import AuthEvent, EventType, FailureReason
from tests.conftest import CHROME_UA, PASSWORD, portal_login
from tests.servers import asgi_server

LIMIT = 5  # the default LOGIN_FAILURE_LIMIT


@pytest.fixture(autouse=True)
def _default_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def failures(client, email="client@acme.test", n=1, **headers):
    return [portal_login(client, email, "wrong-password", **headers) for _ in range(n)]


def logged():
    return [(e.event_type, e.reason) for e in AuthEvent.objects.order_by("seq")]


def test_a_flood_of_wrong_passwords_logs_the_limit_of_failures_and_one_lockout(client, acme):
    responses = failures(client, n=50, REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT=CHROME_UA)

    assert [r.status_code for r in responses] == [200] * (LIMIT - 1) + [429] * (50 - LIMIT + 1)
    assert logged() == [(EventType.LOGIN_FAILED, FailureReason.BAD_PASSWORD)] * LIMIT + [
        (EventType.LOGIN_FAILED, FailureReason.LOCKED_OUT)
    ]


def test_the_lockout_row_says_who_from_where_and_why(client, acme):
    failures(client, n=LIMIT, REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT=CHROME_UA)

    last_failure, lockout = AuthEvent.objects.order_by("-seq")[:2][::-1]
    assert lockout.reason == FailureReason.LOCKED_OUT
    assert lockout.get_reason_display() == "Locked out after too many failures"
    assert (lockout.user, lockout.client) == (acme.portal_user, acme.client)
    assert (lockout.ip, lockout.browser) == ("203.0.113.9", "Chrome 131")
    assert lockout.session_ref == ""
    # After the failure that reached the limit, in the chain and in time.
    assert lockout.seq == last_failure.seq + 1
    assert lockout.occurred_at >= last_failure.occurred_at


def test_staff_see_the_lockout_in_the_tab_and_under_failed_logins(client, acme):
    failures(client, n=LIMIT)
    client.force_login(acme.manager)

    page = client.get(f"/clients/{acme.client.pk}/activity/", {"type": EventType.LOGIN_FAILED})

    assert page.status_code == 200
    # One row says it (the summary's "Last failed attempt" says it too).
    rows = page.content.decode().split('<tbody id="activity-rows">')[1]
    assert rows.count("Locked out after too many failures") == 1


def test_a_locked_out_account_is_refused_without_its_password_being_checked(client, acme):
    failures(client, n=LIMIT)
    before = logged()

    with CaptureQueriesContext(connection) as queries:
        response = portal_login(client, "client@acme.test", PASSWORD)  # the right password

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert logged() == before  # nothing more recorded
    # Checking a password means loading its user; a refused attempt never does...
    assert not [q["sql"] for q in queries if "clients_user" in q["sql"]]
    # ...while an attempt that is not locked out does.
    with CaptureQueriesContext(connection) as queries:
        portal_login(client, "member@acme.test", "wrong-password")
    assert [q["sql"] for q in queries if "clients_user" in q["sql"]]


def test_the_lockout_page_is_branded_and_says_when_to_retry(client, acme, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    response = failures(client, n=LIMIT)[-1]

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    body = response.content.decode()
    assert "Client <strong>Portal</strong>" in body and "Too many sign-in attempts" in body
    assert "try again in 15 minutes" in body


def test_the_lockout_lifts_after_the_cool_off(client, acme, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    failures(client, n=LIMIT - 1)
    started = time.monotonic()
    failures(client)  # the last one allowed: the cool-off runs from here

    # Retry with the right password until it works; the refusals are neither counted nor logged.
    attempts = []
    deadline = started + 20
    while not attempts or attempts[-1] == 429:
        assert time.monotonic() < deadline, "still locked out long after the cool-off"
        attempts.append(portal_login(client, "client@acme.test", PASSWORD).status_code)
        if attempts[-1] == 429:
            time.sleep(0.1)

    assert attempts[0] == 429 and attempts[-1] == 302
    assert time.monotonic() - started >= 1.9  # not before the cool-off
    assert logged()[-2:] == [(EventType.LOGIN_FAILED, FailureReason.LOCKED_OUT), (EventType.LOGIN, "")]


def test_a_successful_sign_in_resets_the_count(client, acme):
    failures(client, n=LIMIT - 1)
    assert portal_login(client, "client@acme.test").status_code == 302
    client.post("/portal/logout/")

    assert [r.status_code for r in failures(client, n=LIMIT - 1)] == [200] * (LIMIT - 1)
    assert failures(client)[0].status_code == 429


def test_another_ip_is_not_locked_out(client, acme):
    failures(client, n=LIMIT, REMOTE_ADDR="203.0.113.9")

    response = portal_login(client, "client@acme.test", REMOTE_ADDR="198.51.100.20")

    assert response.status_code == 302
    assert AuthEvent.objects.latest("seq").ip == "198.51.100.20"


def test_another_account_from_the_same_ip_is_not_locked_out(client, acme):
    failures(client, n=LIMIT, REMOTE_ADDR="203.0.113.9")
    assert portal_login(client, "member@acme.test", REMOTE_ADDR="203.0.113.9").status_code == 302


def test_the_ip_counted_is_the_one_the_log_records_behind_a_trusted_proxy(client, acme, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    via_proxy = {"REMOTE_ADDR": "10.0.0.1"}
    failures(client, n=LIMIT, HTTP_X_FORWARDED_FOR="203.0.113.9", **via_proxy)
    assert AuthEvent.objects.latest("seq").ip == "203.0.113.9"

    # Another visitor behind the same proxy is not locked out with the first...
    ok = portal_login(client, "client@acme.test", HTTP_X_FORWARDED_FOR="198.51.100.20", **via_proxy)
    assert ok.status_code == 302
    client.post("/portal/logout/", HTTP_X_FORWARDED_FOR="198.51.100.20", **via_proxy)
    # ...and a header that no trusted proxy vouches for is no way out of a lockout.
    failures(client, n=LIMIT, REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="192.0.2.1")
    spoofed = portal_login(client, "client@acme.test", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="192.0.2.2")
    assert spoofed.status_code == 429


def test_changing_the_emails_case_does_not_reset_the_count(client, acme):
    spellings = ["client@acme.test", "Client@ACME.test", "CLIENT@acme.TEST", " client@Acme.test", "cLiEnT@acme.test"]
    responses = [portal_login(client, email, "wrong-password") for email in spellings]

    assert responses[-1].status_code == 429
    assert portal_login(client, "Client@Acme.Test").status_code == 429


def test_staff_accounts_are_throttled_and_no_client_log_is_touched(client, acme, caplog):
    def staff_login(password):
        return client.post("/login/", {"username": "manager@acme.test", "password": password})

    with caplog.at_level(logging.WARNING, logger="activitylog"):
        statuses = [staff_login("wrong-password").status_code for _ in range(LIMIT + 3)]
    refused = staff_login(PASSWORD)

    assert statuses == [200] * (LIMIT - 1) + [429] * 4
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
    assert "Agency<strong>Handy</strong>" in refused.content.decode()
    assert AuthEvent.objects.count() == 0
    ops = [r.getMessage() for r in caplog.records if r.name == "activitylog"]
    assert ops == ["Sign-in locked out after repeated failures for 'manager@acme.test' from 127.0.0.1"]


def test_an_unknown_email_is_throttled_and_logged_for_ops_until_the_lockout(client, acme, caplog):
    with caplog.at_level(logging.WARNING, logger="activitylog"):
        statuses = [portal_login(client, "nobody@nowhere.test", "x").status_code for _ in range(20)]

    assert statuses[-1] == 429
    ops = [r.getMessage() for r in caplog.records if r.name == "activitylog"]
    assert sum("Failed login for unknown email" in m for m in ops) == LIMIT
    assert sum("locked out" in m for m in ops) == 1
    assert AuthEvent.objects.count() == 0


# Over HTTP, against a real server process -------------------------------------------------

_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class _Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, data: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            response = self.opener.open(urllib.request.Request(self.base + path, data=body), timeout=30)
        except urllib.error.HTTPError as exc:
            response = exc
        with response:
            return response.status, dict(response.headers), response.read().decode()

    def sign_in(self, email: str, password: str):
        _, _, page = self.open("/portal/login/")
        token = _CSRF_FIELD.search(page).group(1)
        return self.open("/portal/login/", {"csrfmiddlewaretoken": token, "username": email, "password": password})


@pytest.mark.django_db(transaction=True)
def test_a_real_server_throttles_a_flood_over_http(acme):
    with asgi_server() as base:
        browser = _Browser(base)
        answers = [browser.sign_in("client@acme.test", "wrong-password") for _ in range(50)]
        refused = browser.sign_in("client@acme.test", PASSWORD)

    assert [status for status, _, _ in answers] == [200] * (LIMIT - 1) + [429] * (50 - LIMIT + 1)
    status, headers, body = refused
    assert status == 429 and "Too many sign-in attempts" in body
    assert 0 < int(headers["Retry-After"]) <= 15 * 60
    assert logged() == [(EventType.LOGIN_FAILED, FailureReason.BAD_PASSWORD)] * LIMIT + [
        (EventType.LOGIN_FAILED, FailureReason.LOCKED_OUT)
    ]
    assert AuthEvent.objects.latest("seq").ip == "127.0.0.1"
