"""The Activity Log tab: rows, order, time zone, filters, keyset paging, summary and bad input."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from activitylog.models import EventType, FailureReason
from activitylog.selectors import Keyset
from activitylog.services import auth_event_record
from tests.conftest import CHROME_UA

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(people, query: str = "") -> str:
    return f"/clients/{people.client.pk}/activity/" + (f"?{query}" if query else "")


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="event-(\d+)"', html)]


def next_cursor(html: str) -> str | None:
    match = re.search(r'hx-get="[^"]*cursor=([^"&]+)"', html)
    return match.group(1) if match else None


@pytest.fixture
def manager(client, acme):
    client.force_login(acme.manager)
    return client


def record(people, event_type=EventType.LOGIN, *, user=None, at=None, **extra):
    return auth_event_record(
        user=user or people.portal_user, event_type=event_type, occurred_at=at, ip="203.0.113.7",
        user_agent=CHROME_UA, **extra,
    )


def test_rows_are_newest_first_with_every_detail(manager, acme):
    at = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
    older = record(acme, EventType.LOGIN, at=at, session_ref="1" * 64)
    newer = record(acme, EventType.LOGOUT, at=at + timedelta(minutes=30), session_ref="1" * 64)

    html = manager.get(url(acme)).content.decode()

    assert row_ids(html) == [newer.pk, older.pk]
    # Exact to the second in the agency's zone (New York, UTC-4 in March), UTC in the attribute.
    assert '<time class="stamp" datetime="2026-03-14T15:09:26.535897+00:00"' in html
    assert ">2026-03-14 11:09:26 EDT</time>" in html
    assert "Saturday 14 March 2026 · 2026-03-14 15:09:26 UTC" in html  # the tooltip
    assert "America/New_York" in html
    assert "months ago" in html
    assert "client@acme.test" in html and "203.0.113.7" in html
    assert "Chrome 131" in html and "Windows 10" in html
    assert 'class="badge badge-login"' in html and 'class="badge badge-logout"' in html


def test_a_failed_login_shows_its_reason(manager, acme):
    record(acme, EventType.LOGIN_FAILED, reason=FailureReason.CLIENT_ARCHIVED)
    html = manager.get(url(acme)).content.decode()
    assert "Failed login" in html and "Client archived" in html


def test_the_summary_shows_last_login_and_recent_counts(manager, acme):
    now = timezone.now()
    for days in (1, 3, 10, 20, 40):
        record(acme, at=now - timedelta(days=days))
    record(acme, EventType.LOGIN_FAILED, at=now - timedelta(hours=1), reason=FailureReason.BAD_PASSWORD)

    html = manager.get(url(acme)).content.decode()

    assert re.search(r"Logins, last 7 days</dt><dd id=\"summary-7d\">2<", html)
    assert re.search(r"Logins, last 30 days</dt><dd id=\"summary-30d\">4<", html)
    assert ">1 day ago<" in html  # last login one day ago, not the failed attempt an hour ago


def test_the_summary_finds_a_last_login_older_than_its_counts(manager, acme):
    record(acme, at=timezone.now() - timedelta(days=45))
    html = manager.get(url(acme)).content.decode()
    assert re.search(r"Logins, last 30 days</dt><dd id=\"summary-30d\">0<", html)
    assert ">1 month ago<" in html


def test_a_client_who_never_logged_in_gets_a_helpful_empty_state(manager, acme):
    html = manager.get(url(acme)).content.decode()
    assert "Never logged in" in html
    assert "No portal activity yet" in html


def test_filters_by_event_type(manager, acme):
    login = record(acme, EventType.LOGIN, session_ref="2" * 64)
    record(acme, EventType.LOGOUT, session_ref="2" * 64)
    assert row_ids(manager.get(url(acme, "type=login")).content.decode()) == [login.pk]


def test_filters_by_portal_user(manager, acme):
    record(acme, user=acme.portal_user)
    member = record(acme, user=acme.portal_member)
    assert row_ids(manager.get(url(acme, f"user={acme.portal_member.pk}")).content.decode()) == [member.pk]


def test_date_filters_are_whole_days_in_the_agencys_time_zone(manager, acme):
    # 03:30 UTC on 10 March is still 9 March in New York.
    late_on_9th = record(acme, at=datetime(2026, 3, 10, 3, 30, tzinfo=UTC))
    on_10th = record(acme, at=datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    record(acme, at=datetime(2026, 3, 12, 15, 0, tzinfo=UTC))

    html = manager.get(url(acme, "date_from=2026-03-09&date_to=2026-03-09")).content.decode()
    assert row_ids(html) == [late_on_9th.pk]
    html = manager.get(url(acme, "date_from=2026-03-10&date_to=2026-03-11")).content.decode()
    assert row_ids(html) == [on_10th.pk]


def test_a_filter_that_matches_nothing_says_so(manager, acme):
    record(acme)
    html = manager.get(url(acme, "type=logout")).content.decode()
    assert "No activity matches these filters" in html


def test_load_older_walks_every_event_once_in_order_even_with_equal_timestamps(manager, acme, settings):
    settings.ACTIVITYLOG_PAGE_SIZE = 4
    same_moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    events = [record(acme, at=same_moment + timedelta(seconds=i // 3)) for i in range(11)]
    expected = [e.pk for e in sorted(events, key=lambda e: (e.occurred_at, e.pk), reverse=True)]

    html = manager.get(url(acme)).content.decode()
    seen = row_ids(html)
    cursor = next_cursor(html)
    pages = 1
    while cursor:
        html = manager.get(url(acme, f"cursor={cursor}"), **HTMX).content.decode()
        assert "<html" not in html  # only the rows and the next button
        seen += row_ids(html)
        cursor = next_cursor(html)
        pages += 1

    assert seen == expected
    assert pages == 3


def test_load_older_keeps_the_filters(manager, acme, settings):
    settings.ACTIVITYLOG_PAGE_SIZE = 2
    logins = [record(acme, EventType.LOGIN, session_ref=f"{i:064x}") for i in range(3)]
    for i in range(3):
        record(acme, EventType.LOGOUT, session_ref=f"{i:064x}")

    html = manager.get(url(acme, "type=login")).content.decode()
    assert row_ids(html) == [logins[2].pk, logins[1].pk]
    older = manager.get(url(acme, f"type=login&cursor={next_cursor(html)}"), **HTMX).content.decode()
    assert row_ids(older) == [logins[0].pk]


def test_without_javascript_load_older_is_a_link_to_a_full_page(manager, acme, settings):
    settings.ACTIVITYLOG_PAGE_SIZE = 1
    record(acme)
    record(acme)
    html = manager.get(url(acme)).content.decode()
    match = re.search(r'<a class="button-secondary" href="(\?[^"]*cursor=[^"]+)"', html)
    page = manager.get(url(acme) + match.group(1).replace("&amp;", "&"))
    assert page.status_code == 200
    assert "<html" in page.content.decode() and "Back to newest" in page.content.decode()


def test_an_htmx_tab_switch_returns_only_the_tab(manager, acme):
    record(acme)
    html = manager.get(url(acme), **HTMX, HTTP_HX_TARGET="client-tabs").content.decode()
    assert "<html" not in html
    assert 'role="tablist"' in html and 'id="activity-results"' in html


def test_an_htmx_filter_change_returns_only_the_results(manager, acme):
    record(acme)
    html = manager.get(url(acme, "type=login"), **HTMX, HTTP_HX_TARGET="activity-results").content.decode()
    assert "<html" not in html and 'role="tablist"' not in html
    assert "<table" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("cursor=garbage", "invalid or was altered"),
        ("cursor=" + "A" * 300, "at most 200"),
        ("type=deleted", "Select a valid choice"),
        ("user=abc", "Select a valid choice"),
        ("user=99999999999999999999", "Select a valid choice"),
        ("date_from=yesterday", "Enter a valid date"),
        ("date_from=2026-02-30", "Enter a valid date"),
        ("date_to=9999-12-31", "Pick a date between"),
        ("date_from=0001-01-01", "Pick a date between"),
        ("date_from=2026-05-02&date_to=2026-05-01", "must be on or before"),
    ],
)
def test_bad_input_is_a_clear_422_shown_inline(manager, acme, query, message):
    targets = ({}, HTMX, HTMX | {"HTTP_HX_TARGET": "activity-results"}, HTMX | {"HTTP_HX_TARGET": "load-older"})
    for headers in targets:
        response = manager.get(url(acme, query), **headers)
        assert response.status_code == 422, headers
        html = response.content.decode()
        assert message in html, headers
        assert 'class="alert error" role="alert"' in html, headers


def test_an_htmx_filter_error_replaces_the_results_instead_of_leaving_the_old_rows(manager, acme):
    from activitylog.services import auth_event_record

    auth_event_record(user=acme.portal_user, event_type="login")
    for target in ("activity-results", "load-older"):
        response = manager.get(url(acme, "date_from=2026-05-02&date_to=2026-05-01"),
                               **HTMX, HTTP_HX_TARGET=target)
        html = response.content.decode()
        # Into the results, whole: the error, and no rows of the filter that was not applied.
        assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#activity-results", "innerHTML")
        assert "must be on or before" in html and 'class="event ' not in html


def test_the_date_pickers_are_linked_so_from_cannot_pass_to(manager, acme):
    html = manager.get(url(acme, "date_from=2026-05-02&date_to=2026-05-09")).content.decode()
    assert re.search(r'name="date_from"[^>]*max="2026-05-09"', html)
    assert re.search(r'name="date_to"[^>]*min="2026-05-02"', html)


def test_a_cursor_signed_for_a_different_purpose_is_rejected(manager, acme):
    from django.core import signing

    forged = signing.dumps([0, 1], salt="something.else", compress=False)
    assert manager.get(url(acme, f"cursor={forged}")).status_code == 422


def test_a_cursor_with_the_wrong_shape_is_rejected(manager, acme):
    from django.core import signing

    for payload in (["x", 1], [1], [1.5, 2], [-5, 1], {"a": 1}, [True, 1]):
        token = signing.dumps(payload, salt="activitylog.cursor.v1", compress=False)
        assert manager.get(url(acme, f"cursor={token}")).status_code == 422, payload


def test_a_portal_user_of_another_client_is_not_a_valid_filter(manager, acme, globex):
    assert manager.get(url(acme, f"user={globex.portal_user.pk}")).status_code == 422


def test_a_cursor_round_trips_to_the_microsecond():
    moment = datetime(2026, 11, 26, 10, 4, 12, 999999, tzinfo=UTC)
    assert Keyset.decode(Keyset(moment, 42).encode()) == Keyset(moment, 42)
