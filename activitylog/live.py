"""
After commit → channel layer. Publishes new events to the open Activity Log tabs, and
tells open sockets when a staff user's access changes.

Groups:
- `activity.client.<id>`: every socket watching that client's log.
- `activity.staff.<user id>`: every socket of one staff user, to close them when access ends.

Publishing is best effort: the event is already committed, and a tab that misses a
message catches up when its socket reconnects (see consumers.py). A failure (Redis
down, say) is logged and never fails the login that caused it.
"""

import logging
from datetime import tzinfo

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string
from django.utils import timezone

from activitylog.models import AuthEvent

logger = logging.getLogger("activitylog.live")

ROW_TEMPLATE = "activitylog/activity_tab.html#row"


def client_group(client_id: int) -> str:
    return f"activity.client.{client_id}"


def staff_group(user_id: int) -> str:
    return f"activity.staff.{user_id}"


def render_row(event: AuthEvent, tz: tzinfo, *, live: bool = True) -> str:
    """The event's table row, from the same partial the page uses."""
    with timezone.override(tz):
        return render_to_string(ROW_TEMPLATE, {"event": event, "live": live})


def event_message(event: AuthEvent, tz: tzinfo) -> dict:
    """The group message for one event: rendered once, filtered per socket by its fields."""
    return {
        "type": "activity.event",
        "id": event.pk,
        "event_type": event.event_type,
        "user_id": event.user_id,
        "occurred_at": event.occurred_at.timestamp(),
        "html": render_row(event, tz),
    }


def _send(group: str, message: dict) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001 - any layer failure must not break a committed login
        logger.exception("Live update to %s failed; open tabs will catch up on reconnect", group)
        return False
    return True


def auth_event_publish(event: AuthEvent, tz: tzinfo) -> bool:
    """Push a committed event to the tabs watching its client. Call it after commit."""
    return _send(client_group(event.client_id), event_message(event, tz))


def staff_access_changed(user_id: int) -> bool:
    """Ask the user's open sockets to check their access again (role or membership changed)."""
    return _send(staff_group(user_id), {"type": "access.changed"})


def staff_session_ended(user_id: int, session_ref: str) -> bool:
    """Close the sockets opened from a session that just logged out."""
    return _send(staff_group(user_id), {"type": "session.ended", "session_ref": session_ref})
