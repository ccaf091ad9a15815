"""
The text of an Activity Log row, formatted in Python once per event.

Django's date filters and timesince cost about 0.3 ms a row in the template; plain
strftime costs a few microseconds. The row partial only prints these strings, spelled
as every other page spells a time (clients/clock.py).
"""

from datetime import datetime, tzinfo

from django.utils import timezone

from activitylog.models import AuthEvent
from clients.clock import spell
from clients.templatetags.clock import stamp_html


def prepare_rows(events: list[AuthEvent], *, tz: tzinfo, now: datetime | None = None) -> list[AuthEvent]:
    """
    Attach to each event `stamp` (its time, with how long ago), `sort` (the order the live
    script keeps) and `session_login_shown` (when the login that an expiry closes happened).
    """
    now = now or timezone.now()
    for event in events:
        event.stamp = stamp_html(event.occurred_at, tz, now=now)
        event.sort = int(event.occurred_at.timestamp())
        login_at = getattr(event, "session_login_at", None)
        event.session_login_shown = spell(login_at, tz) if login_at else None
    return events
