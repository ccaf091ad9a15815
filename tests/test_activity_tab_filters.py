"""
The tab's filter bar: quick ranges, search by email or IP, the capped count of matching
events, and the chips that each remove one filter. Bad values are a 422 shown inline.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from activitylog import views
from activitylog.models import EventType
from activitylog.services import auth_event_record
from tests.test_activity_tab import HTMX, row_ids, url


@pytest.fixture
def manager(client, acme):
    client.force_login(acme.manager)
    return client


def record(user, *, ago: timedelta, ip: str = "203.0.113.7", event_type=EventType.LOGIN):
    return auth_event_record(user=user, event_type=event_type, occurred_at=timezone.now() - ago, ip=ip)


@pytest.mark.parametrize(
    ("value", "hours_in", "hours_out"),
    [("24h", 23, 25), ("7d", 24 * 7 - 1, 24 * 7 + 1), ("30d", 24 * 30 - 1, 24 * 30 + 1)],
)
def test_a_quick_range_lists_only_events_since_its_start(manager, acme, value, hours_in, hours_out):
    inside = record(acme.portal_user, ago=timedelta(hours=hours_in))
    record(acme.portal_user, ago=timedelta(hours=hours_out))
    assert row_ids(manager.get(url(acme, f"range={value}")).content.decode()) == [inside.pk]


def test_today_starts_at_midnight_in_the_viewers_zone(manager, acme):
    midnight = timezone.now().astimezone(acme.agency.tzinfo).replace(hour=0, minute=0, second=0, microsecond=0)
    today = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=midnight)
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=midnight - timedelta(microseconds=1))
    assert row_ids(manager.get(url(acme, "range=today")).content.decode()) == [today.pk]


def test_search_finds_an_ip_exactly_and_an_email_by_any_part(manager, acme):
    from_office = record(acme.portal_user, ago=timedelta(hours=1), ip="198.51.100.20")
    by_member = record(acme.portal_member, ago=timedelta(hours=2), ip="2001:db8::1")
    record(acme.portal_user, ago=timedelta(hours=3), ip="198.51.100.2")

    assert row_ids(manager.get(url(acme, "q=198.51.100.20")).content.decode()) == [from_office.pk]
    # Any spelling of an address finds it: stored addresses are canonical.
    assert row_ids(manager.get(url(acme, "q=2001:DB8:0::1")).content.decode()) == [by_member.pk]
    assert row_ids(manager.get(url(acme, "q=MEMBER@acme")).content.decode()) == [by_member.pk]
    html = manager.get(url(acme, "q=nobody-by-that-name")).content.decode()
    assert row_ids(html) == [] and "No activity matches these filters" in html


def test_search_never_finds_another_clients_users(manager, acme, globex):
    record(globex.portal_user, ago=timedelta(hours=1), ip="203.0.113.9")
    assert row_ids(manager.get(url(acme, f"q={globex.portal_user.email}")).content.decode()) == []
    assert row_ids(manager.get(url(acme, "q=203.0.113.9")).content.decode()) == []


def test_the_count_says_how_many_match_and_stops_counting_at_the_cap(manager, acme, monkeypatch):
    for hours in range(1, 4):
        record(acme.portal_user, ago=timedelta(hours=hours))
    record(acme.portal_user, ago=timedelta(hours=5), event_type=EventType.LOGOUT)

    assert "4 events in all" in manager.get(url(acme)).content.decode()
    assert "1 event matches these filters" in manager.get(url(acme, "type=logout")).content.decode()
    assert "3 events match these filters" in manager.get(url(acme, "type=login")).content.decode()
    monkeypatch.setattr(views, "COUNT_CAP", 2)
    assert "More than 2 events match these filters" in manager.get(url(acme, "type=login")).content.decode()
    # Unfiltered, the count is the chain's length, exact at any size.
    assert "4 events in all" in manager.get(url(acme)).content.decode()


def test_the_unfiltered_count_is_this_clients_alone(manager, acme, globex):
    record(acme.portal_user, ago=timedelta(hours=1))
    for hours in range(1, 3):
        record(globex.portal_user, ago=timedelta(hours=hours))
    assert "1 event in all" in manager.get(url(acme)).content.decode()


def test_each_active_filter_is_a_chip_that_removes_only_itself(manager, acme):
    html = manager.get(url(acme, "type=login&range=7d&q=client%40acme.test"), **HTMX,
                       HTTP_HX_TARGET="activity-results").content.decode()
    chips = dict(re.findall(r'<a class="chip" href="([^"]+)"[^>]*aria-label="Remove the filter ([^"]+)"', html))
    assert set(chips.values()) == {"Email or IP address: client@acme.test", "When: Last 7 days", "Event: Login"}
    by_label = {label: href.replace("&amp;", "&") for href, label in chips.items()}
    assert by_label["Event: Login"] == url(acme, "q=client%40acme.test&range=7d")
    assert by_label["When: Last 7 days"] == url(acme, "q=client%40acme.test&type=login")
    assert "the filters apply to the list below" in html  # the summary says it is not filtered


def test_an_unfiltered_tab_has_no_chips(manager, acme):
    html = manager.get(url(acme)).content.decode()
    assert 'class="chips"' not in html and "the filters apply to the list below" not in html


@pytest.mark.parametrize("query", ["range=1y", "range=%00", "q=" + "x" * 300])
def test_a_bad_range_or_search_is_a_clear_422(manager, acme, query):
    response = manager.get(url(acme, query))
    assert response.status_code == 422
    assert "That filter could not be applied" in response.content.decode()
