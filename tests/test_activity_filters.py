"""
The Activity Log tab's filter is defined once and used twice: as a query (the page, a
resync, the CSV download) and on each event pushed live. Property-based: for any filter,
time zone and events, a pushed event passes exactly when the page would list it.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from activitylog import live
from activitylog.models import EventType
from activitylog.selectors import EventFilters, auth_events_filtered
from activitylog.services import auth_event_record

# Whole and half hours from UTC, both sides of the date line, and a change to summer time
# (Europe's, on 29 March 2026) inside the week the events fall in.
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
START = datetime(2026, 3, 26, tzinfo=UTC)
DAYS = 7
days = st.dates(min_value=START.date() - timedelta(days=1), max_value=START.date() + timedelta(days=DAYS + 1))
week = st.datetimes(min_value=START.replace(tzinfo=None), max_value=(START + timedelta(days=DAYS)).replace(tzinfo=None),
                    timezones=st.just(UTC))


IPS = ["203.0.113.7", "2001:db8::1"]


def tab_filters(user_ids: list[int]):
    return st.builds(
        EventFilters,
        event_type=st.sampled_from(["", *EventType.values]),
        user_id=st.sampled_from([None, *user_ids]),
        date_from=st.none() | days,
        date_to=st.none() | days,
        since=st.none() | week,
        ip=st.sampled_from(["", *IPS]),
        user_ids=st.none() | st.frozensets(st.sampled_from(user_ids)),
    )


def _or_often(value, others):
    return st.just(value) | others if value else others


def instants(tab_filter: EventFilters, tz: ZoneInfo):
    """
    Any instant of the week, or the start of a day in `tz` or of the quick range ±1 µs:
    often where the filter's dates begin or end, which is where its two uses could part.
    """
    day_after = tab_filter.date_to and tab_filter.date_to + timedelta(days=1)
    edge_days = _or_often(tab_filter.date_from, _or_often(day_after, days))
    starts = st.builds(lambda day, micros: datetime.combine(day, time.min, tzinfo=tz) + timedelta(microseconds=micros),
                       edge_days, st.integers(-1, 1))
    if tab_filter.since:  # where a quick range begins
        starts |= st.builds(lambda micros: tab_filter.since + timedelta(microseconds=micros), st.integers(-1, 1))
    return starts | week


@settings(max_examples=150)  # a few milliseconds an example
@given(data=st.data())
def test_a_live_event_passes_the_filter_exactly_when_the_page_lists_it(data, acme):
    users = {user.pk: user for user in (acme.portal_user, acme.portal_member)}
    tz = ZoneInfo(data.draw(st.sampled_from(ZONES)))
    tab_filter = data.draw(tab_filters(list(users)))
    events = [
        auth_event_record(
            user=users[data.draw(_or_often(tab_filter.user_id, st.sampled_from(list(users))))],
            event_type=data.draw(_or_often(tab_filter.event_type, st.sampled_from(EventType.values))),
            occurred_at=data.draw(instants(tab_filter, tz)),
            ip=data.draw(_or_often(tab_filter.ip, st.sampled_from([None, *IPS]))),
        )
        for _ in range(data.draw(st.integers(1, 4)))
    ]

    listed = set(auth_events_filtered(client=acme.client, filters=tab_filter, tz=tz).values_list("id", flat=True))
    for event in events:
        pushed = live.event_fields(live.event_message(event, tz))
        assert tab_filter.matches(pushed, tz) == (event.pk in listed), event.occurred_at

