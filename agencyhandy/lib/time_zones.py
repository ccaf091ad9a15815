"""
A time zone's history as a short table: from which instant which UTC offset and which
abbreviation hold. It lets SQL spell local times exactly as Python's zoneinfo does.

PostgreSQL can convert to a zone (`timezone(zone, t)`), but it names the abbreviation
only for the session's own zone, in capitals (`ChST` becomes `CHST`), and from its own
copy of tzdata. A query that spells the local times of several zones at once, byte for
byte as `datetime.strftime("%Z")` does, needs the offsets and names from Python instead:
this module reads them from zoneinfo, which exposes no transition list, by sampling.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# tzdata's shortest period since 1900 lasts four days (Africa/Freetown, 1939), so a
# sample every twelve hours cannot step over one. Transitions fall on whole seconds.
SAMPLE_STEP = timedelta(hours=12)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Period:
    """From `starts_at` (UTC) until the next period, local time is UTC + `utc_offset`, called `abbreviation`."""

    starts_at: datetime
    utc_offset: timedelta
    abbreviation: str


def _state(zone: ZoneInfo, moment: datetime) -> tuple[timedelta, str]:
    local = moment.astimezone(zone)
    return local.utcoffset(), local.tzname()


def _transition(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first whole second in (before, after] with the state `after` has; `before` has another."""
    state = _state(zone, after)
    while after - before > _SECOND:
        middle = (before + (after - before) / 2).replace(microsecond=0)
        if _state(zone, middle) == state:
            after = middle
        else:
            before = middle
    return after


def zone_periods(zone: ZoneInfo, *, start: datetime, end: datetime) -> list[Period]:
    """
    The periods of `zone` that cover [start, end], oldest first. The first one is given
    from `datetime.min` (UTC), so a lookup of any earlier moment finds it too; the last
    one lasts past `end`. Both bounds must be aware datetimes.
    """
    # Whole seconds from here on, like the transitions themselves.
    start = start.astimezone(UTC).replace(microsecond=0)
    end = end.astimezone(UTC).replace(microsecond=0) + _SECOND
    offset, name = _state(zone, start)
    periods = [Period(datetime.min.replace(tzinfo=UTC), offset, name)]
    previous = start
    while previous < end:
        moment = min(previous + SAMPLE_STEP, end)
        if _state(zone, moment) != (periods[-1].utc_offset, periods[-1].abbreviation):
            starts_at = _transition(zone, previous, moment)
            periods.append(Period(starts_at, *_state(zone, starts_at)))
        previous = moment
    return periods
