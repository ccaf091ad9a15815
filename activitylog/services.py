"""
Writes to the activity log. Every event, whatever triggered it (a portal login, the
demo seed, the simulator, a test), is appended by `auth_event_record` and nothing else.
"""

import hashlib
import zoneinfo
from datetime import datetime

from django.db import DatabaseError, transaction
from django.utils import timezone

from activitylog import chain, live
from activitylog.models import REASONS_BY_EVENT_TYPE, AuthEvent, EventType
from agencyhandy.lib.client_ip import canonical_ip, client_ip
from agencyhandy.lib.user_agent import MAX_USER_AGENT_LENGTH, browser_and_os
from agencyhandy.unavailable import ServiceUnavailable
from clients.models import Client, User


class ActivityLogUnavailable(ServiceUnavailable):
    """The event could not be written, so the action it records must not happen."""


def session_ref_for(session_key: str | None) -> str:
    """A stable reference to a session that does not reveal the session key."""
    if not session_key:
        return ""
    return hashlib.sha256(session_key.encode()).hexdigest()


def auth_event_record(
    *,
    user: User,
    event_type: str,
    ip: str | None = None,
    user_agent: str = "",
    session_ref: str = "",
    reason: str = "",
    occurred_at: datetime | None = None,
) -> AuthEvent:
    """
    Append one event to the log of `user`'s client and return it.

    The client's row is locked for the append, so concurrent events of one client queue
    up and each links to the one before (the unique (client, seq) constraint backs this
    up). `occurred_at` defaults to now, taken under the lock so a client's events are
    in time order. After commit the event is pushed to open Activity Log tabs.
    Raises ActivityLogUnavailable if the event cannot be stored.
    """
    _check_event(user=user, event_type=event_type, reason=reason)
    user_agent = (user_agent or "")[:MAX_USER_AGENT_LENGTH]
    browser, os_name = browser_and_os(user_agent)
    event = AuthEvent(
        client_id=user.client_id,
        user_id=user.pk,
        email=user.email,
        event_type=event_type,
        # "2001:DB8::1" is stored as "2001:db8::1"; hash what is stored.
        ip=canonical_ip(ip) if ip is not None else None,
        user_agent=user_agent,
        browser=browser,
        os=os_name,
        session_ref=session_ref,
        reason=reason,
    )
    try:
        with transaction.atomic():
            tz = _append_to_chain(event, occurred_at=occurred_at)
            # Open tabs hear of it only once it is durable; a rolled-back login pushes nothing.
            transaction.on_commit(lambda: live.auth_event_publish(event, tz))
    except DatabaseError as exc:
        raise ActivityLogUnavailable(f"Could not record {event_type} of {user.email}: {exc}") from exc
    return event


def _check_event(*, user: User, event_type: str, reason: str) -> None:
    if user.client_id is None:
        raise ValueError(f"{user} is not a portal user; only client events are logged.")
    if event_type not in EventType.values:
        raise ValueError(f"Unknown event type {event_type!r}.")
    if reason and reason not in REASONS_BY_EVENT_TYPE.get(event_type, ()):
        raise ValueError(f"{reason!r} is not a reason for a {event_type} event.")


def _append_to_chain(event: AuthEvent, *, occurred_at: datetime | None) -> zoneinfo.ZoneInfo:
    """
    Under the client's lock: link `event` after the head of its client's chain, hash it
    and insert it. Returns the agency's time zone, for the live row.
    """
    agency_id, time_zone = (
        Client.objects.select_for_update(no_key=True, of=("self",))
        .values_list("agency_id", "agency__time_zone")
        .get(pk=event.client_id)
    )
    head = AuthEvent.objects.filter(client_id=event.client_id).order_by("-seq").values_list("seq", "hash").first()
    event.seq, event.prev_hash = (head[0] + 1, head[1]) if head else (1, chain.GENESIS)
    [event.id] = AuthEvent.objects.allocate_ids(1)  # before hashing: the chain covers ids
    event.agency_id = agency_id
    event.chain_version = chain.CHAIN_VERSION
    event.occurred_at = occurred_at or timezone.now()
    event.hash = chain.event_hash(event.__dict__)
    event.save()
    return zoneinfo.ZoneInfo(time_zone)


def auth_event_record_from_request(
    *, request, user: User, event_type: str, reason: str = ""
) -> AuthEvent:
    """Record an event with the IP, user agent and session taken from `request` (may be None)."""
    meta = request.META if request is not None else {}
    session = getattr(request, "session", None)
    # A failed attempt has no session of its own to pair with.
    with_session = session is not None and event_type != EventType.LOGIN_FAILED
    return auth_event_record(
        user=user,
        event_type=event_type,
        ip=client_ip(meta),
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        session_ref=session_ref_for(session.session_key) if with_session else "",
        reason=reason,
    )
