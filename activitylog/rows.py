"""
The text of an Activity Log row, formatted in Python once per event.

Django's date filters and timesince cost about 0.3 ms a row in the template; plain
strftime costs a few microseconds. The row partial only prints these strings, spelled
as every other page spells a time (clients/clock.py).
"""

from datetime import datetime, timedelta, tzinfo
from functools import lru_cache

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from activitylog import security
from activitylog.models import AuthEvent, EventType
from activitylog.security import NO_SIGNALS, EventDetails, RowSignals, row_signals
from clients.clock import spell, spell_utc
from clients.templatetags.clock import stamp_html


def prepare_rows(events: list[AuthEvent], *, tz: tzinfo, now: datetime | None = None) -> list[AuthEvent]:
    """
    Attach to each event `type_label` and `reason_label` (the readable event type and
    reason), `stamp` (its time, with how long ago), `sort` (the order the live
    script keeps), `session_login_shown` (when the login that an expiry closes happened),
    and its security signals (activitylog/security.py): `marks` (the badges), `alert`
    ("lockout", "burst" or "": what makes the row stand out) and `details_url` (the
    expanded row). The signals cost one query for the whole list.
    """
    now = now or timezone.now()
    signals = row_signals(events)
    for event in events:
        event.type_label = event.get_event_type_display()
        event.type_label_lower = event.type_label.lower()
        event.reason_label = event.get_reason_display()
        event.stamp = stamp_html(event.occurred_at, tz, now=now)
        event.sort = int(event.occurred_at.timestamp())
        login_at = getattr(event, "session_login_at", None)
        event.session_login_shown = spell(login_at, tz) if login_at else None
        event.signals = signals.get(event.pk, NO_SIGNALS)
        event.marks = marks_html(event.signals)
        event.alert = "lockout" if event.signals.lockout else "burst" if event.signals.burst else ""
        event.details_url = f"{_tab_url(event.client_id)}events/{event.pk}/"
    return events


# (css class, label): words, not colour alone, say what each mark means.
MARKS = (
    ("lockout", "badge-lockout", "Locked out"),
    ("burst", "badge-burst", "Burst of failures"),
    ("new_ip", "badge-new", "New IP"),
    ("new_device", "badge-new", "New device"),
)


@lru_cache(maxsize=32)
def marks_html(signals: RowSignals) -> SafeString:
    """The badges of a row's signals (16 combinations, each formatted once)."""
    marks = [(css, label) for name, css, label in MARKS if getattr(signals, name)]
    return format_html_join("", '<span class="badge {}">{}</span>', marks)


@lru_cache(maxsize=1024)
def _tab_url(client_id: int) -> str:
    return reverse("activitylog:tab", args=[client_id])


# An expanded row --------------------------------------------------------------------


def details_context(details: EventDetails, *, tz: tzinfo, now: datetime | None = None) -> dict:
    """The sentences of an expanded row (templates/activitylog/event_details.html), times spelled in `tz`."""
    return {
        "when_utc": spell_utc(details.event.occurred_at),
        "signal_lines": _signal_lines(details),
        "session_text": _session_text(details, tz, now or timezone.now()),
        "same_ip_days": security.SAME_IP_SPAN.days,
    }


def _signal_lines(details: EventDetails) -> list[str]:
    event, signals = details.event, details.signals
    lines = []
    if signals.lockout:
        lines.append("Locked out: too many failed sign-ins to this account from this IP. Sign-ins from it are "
                     "refused until the cool-off ends, even with the right password.")
    if signals.burst:
        lines.append(f"Burst of failures: at least {security.BURST_FAILURES} failed sign-ins for this user, "
                     f"or from this IP, within {_minutes(security.BURST_WINDOW)} of this one.")
    if signals.new_ip:
        lines.append(f"New IP: {event.email} had never signed in from {event.ip} before.")
    if signals.new_device:
        lines.append(f"New device: {event.email} had never signed in with {_device(event)} before.")
    return lines


def _session_text(details: EventDetails, tz: tzinfo, now: datetime) -> str:
    event, login, ending = details.event, details.login, details.ending
    if event.event_type == EventType.LOGIN_FAILED:
        return "None: the sign-in failed."
    if event.event_type == EventType.LOGIN:
        if ending is not None:
            how = "Logged out" if ending.event_type == EventType.LOGOUT else f"Expired ({ending.get_reason_display()})"
            return f"{how} at {spell(ending.occurred_at, tz)}, after {spell_duration(details.session_length)}."
        if details.still_open:
            return f"Still signed in, for {spell_duration(now - event.occurred_at)} so far."
        return "No logout or expiry recorded for this session."
    if login is None:
        return "Its login is not in the log."
    return f"Signed in at {spell(login.occurred_at, tz)}; the session lasted {spell_duration(details.session_length)}."


def _device(event: AuthEvent) -> str:
    # The versions aside, as the "New device" query compares them (models.versionless).
    browser, os_name = (value.rstrip("0123456789. ") for value in (event.browser, event.os))
    return " on ".join(part for part in (browser or "an unknown browser", os_name) if part)


def _minutes(span: timedelta) -> str:
    return f"{span // timedelta(minutes=1)} minutes"


def spell_duration(span: timedelta) -> str:
    """`45 s`, `12 min 5 s`, `3 h 20 min`, `2 days 4 h`: the two largest units."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = [(days, "day" if days == 1 else "days"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    first = next((i for i, (count, _) in enumerate(units) if count), len(units) - 1)
    shown = [(count, unit) for count, unit in units[first:first + 2] if count] or [(0, "s")]
    return " ".join(f"{count} {unit}" for count, unit in shown)
