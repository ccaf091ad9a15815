"""
One clock: how every timestamp is spelled for a person, and which zone they read it in.

Every page, row and summary spells a time the same way, with its zone, because in the
hour that repeats when clocks go back a time without an offset is ambiguous:
`2026-11-25 21:09:32 EST`. The same moment in UTC is always at hand (a hover or focus
shows it), and "how long ago" has one wording, here and in static/js/app.js.

Staff read times in their agency's zone unless they choose their browser's zone or UTC.
The choice is kept in a cookie, so it holds across visits on that browser, and both the
pages (`AgencyTimezoneMiddleware`) and the live socket read it.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

ZONE_COOKIE = "tz"
ZONE_COOKIE_MAX_AGE = 365 * 24 * 3600
_BROWSER_PREFIX = "browser:"

SPELLING = "%Y-%m-%d %H:%M:%S %Z"


def spell(value: datetime, tz: tzinfo) -> str:
    """`2026-11-25 21:09:32 EST`: the moment in `tz`, to the second, with the zone's abbreviation."""
    return value.astimezone(tz).strftime(SPELLING)


def spell_utc(value: datetime) -> str:
    return spell(value, UTC)


# The steps of "how long ago", coarsest first. static/js/app.js (`ago`) has the same table.
_AGO_STEPS = (
    (365 * 86400, "year"),
    (30 * 86400, "month"),
    (86400, "day"),
    (3600, "hour"),
    (60, "minute"),
)


def ago(value: datetime, now: datetime) -> str:
    """`just now`, `1 minute ago`, `5 hours ago`, `2 years ago`: whole units, rounded down."""
    seconds = (now - value) // timedelta(seconds=1)
    for size, unit in _AGO_STEPS:
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


@dataclass(frozen=True)
class ZoneChoice:
    """The zone a viewer reads times in: their agency's (the default), their browser's, or UTC."""

    kind: str  # "agency", "browser" or "utc"
    name: str  # the IANA name of the zone in force

    @property
    def tzinfo(self) -> tzinfo:
        return _zone(self.name)

    def cookie_value(self) -> str:
        return _BROWSER_PREFIX + self.name if self.kind == "browser" else self.kind


@lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else zoneinfo.ZoneInfo(name)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_known_zone(name: str) -> bool:
    return name in _known_zones()


def zone_choice(cookie: str | None, *, agency_zone: str) -> ZoneChoice:
    """The choice a `tz` cookie holds. Anything unknown or malformed means the agency's zone."""
    if cookie == "utc":
        return ZoneChoice("utc", "UTC")
    if cookie and cookie.startswith(_BROWSER_PREFIX):
        name = cookie.removeprefix(_BROWSER_PREFIX)
        if is_known_zone(name):
            return ZoneChoice("browser", name)
    return ZoneChoice("agency", agency_zone)
