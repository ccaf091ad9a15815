"""`{% stamp value %}`: a timestamp as every page shows it (clients/clock.py says why)."""

from datetime import UTC, datetime, tzinfo

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from clients.clock import ago, spell, spell_utc

register = template.Library()


def stamp_html(value: datetime, tz: tzinfo, *, now: datetime | None = None) -> SafeString:
    """
    `<time>` spelled in `tz`, with UTC and the weekday in its title, and with `now`,
    how long ago, which static/js/app.js keeps current. Focusable, so a keyboard user
    gets the same tooltip as a mouse (app.js adds the viewer's own local time to it).
    """
    local = value.astimezone(tz)
    iso = value.astimezone(UTC).isoformat()
    html = format_html(
        '<time class="stamp" datetime="{}" title="{} · {}" tabindex="0">{}</time>',
        iso, f"{local:%A} {local.day} {local:%B %Y}", spell_utc(value), spell(value, tz),
    )
    if now is None:
        return html
    return format_html('{} <span class="ago muted" data-ago="{}">{}</span>', html, iso, ago(value, now))


@register.simple_tag
def stamp(value: datetime | None, show_ago: bool = False, empty: str = "—") -> str:
    """A timestamp in the viewer's zone (the active one), optionally with how long ago."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    return stamp_html(value, timezone.get_current_timezone(), now=timezone.now() if show_ago else None)
