"""`{% stamp value %}`: a timestamp as every page shows it (clients/clock.py says why)."""

from datetime import UTC, datetime, tzinfo
from html import escape

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from clients.clock import ago, spell, spell_utc

register = template.Library()


def stamp_html(value: datetime, tz: tzinfo, *, now: datetime | None = None) -> SafeString:
    """
    `<time>` spelled in `tz`, with UTC and the weekday in its title, and with `now`,
    how long ago, which static/js/app.js keeps current. Focusable, so a keyboard user
    gets the same tooltip as a mouse (app.js adds the viewer's own local time to it).

    An f-string with each value escaped, not format_html: half the cost, and a page of
    the Activity Log stamps fifty rows.
    """
    local, utc = value.astimezone(tz), value.astimezone(UTC)
    iso = utc.isoformat()
    title = f"{local:%A} {local.day} {local:%B %Y} · {spell_utc(utc)}"
    html = f'<time class="stamp" datetime="{iso}" title="{escape(title)}" tabindex="0">{escape(spell(local, tz))}</time>'
    if now is not None:
        html += f' <span class="ago muted" data-ago="{iso}">{escape(ago(value, now))}</span>'
    return mark_safe(html)


@register.simple_tag
def stamp(value: datetime | None, show_ago: bool = False, empty: str = "—") -> str:
    """A timestamp in the viewer's zone (the active one), optionally with how long ago."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    return stamp_html(value, timezone.get_current_timezone(), now=timezone.now() if show_ago else None)
