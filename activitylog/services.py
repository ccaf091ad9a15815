"""
Writes to the activity log. Every event, whatever triggered it (a portal login, the
demo seed, the simulator, a test), is appended by `auth_event_record` and nothing else.
"""

import hashlib
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from activitylog import chain, live
from activitylog.models import REASONS_BY_EVENT_TYPE, AuthEvent, EventType, PortalSession, SessionEndReason
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
    if user.client_id is None:
        raise ValueError(f"{user} is not a portal user; only client events are logged.")
    if event_type not in EventType.values:
        raise ValueError(f"Unknown event type {event_type!r}.")
    if reason and reason not in REASONS_BY_EVENT_TYPE.get(event_type, ()):
        raise ValueError(f"{reason!r} is not a reason for a {event_type} event.")
    if ip is not None:
        ip = canonical_ip(ip)  # "2001:DB8::1" is stored as "2001:db8::1"; hash what is stored
    user_agent = (user_agent or "")[:MAX_USER_AGENT_LENGTH]
    browser, os_name = browser_and_os(user_agent)

    try:
        with transaction.atomic():
            agency_id, time_zone = (
                Client.objects.select_for_update(no_key=True, of=("self",))
                .values_list("agency_id", "agency__time_zone")
                .get(pk=user.client_id)
            )
            head = (
                AuthEvent.objects.filter(client_id=user.client_id)
                .order_by("-seq")
                .values_list("seq", "hash")
                .first()
            )
            seq, prev_hash = (head[0] + 1, head[1]) if head else (1, chain.GENESIS)
            [event_id] = AuthEvent.objects.allocate_ids(1)  # before hashing: the chain covers ids
            event = AuthEvent(
                id=event_id,
                chain_version=chain.CHAIN_VERSION,
                agency_id=agency_id,
                client_id=user.client_id,
                user_id=user.pk,
                email=user.email,
                event_type=event_type,
                occurred_at=occurred_at or timezone.now(),
                ip=ip,
                user_agent=user_agent,
                browser=browser,
                os=os_name,
                session_ref=session_ref,
                reason=reason,
                seq=seq,
                prev_hash=prev_hash,
            )
            event.hash = chain.event_hash(event.__dict__)
            event.save()
            # Open tabs hear of it only once it is durable; a rolled-back login pushes nothing.
            tz = zoneinfo.ZoneInfo(time_zone)
            transaction.on_commit(lambda: live.auth_event_publish(event, tz))
    except DatabaseError as exc:
        raise ActivityLogUnavailable(f"Could not record {event_type} of {user.email}: {exc}") from exc
    return event


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


# Portal sessions ----------------------------------------------------------------------
#
# A client who closes the browser never logs out; the session just expires. These keep a
# PortalSession row for every open portal session so that its end is logged either way:
# by the logout, or as session_expired at the moment it expired or was cut short.

_REFRESHED_AT = "activitylog.refreshed_at"


def _session_expiry(*, started_at: datetime, now: datetime) -> tuple[datetime, str]:
    """When a session active at `now` ends if nothing more happens, and why."""
    idle_end = now + timedelta(seconds=settings.PORTAL_SESSION_IDLE_TIMEOUT)
    age_end = started_at + timedelta(seconds=settings.PORTAL_SESSION_MAX_AGE)
    if idle_end < age_end:
        return idle_end, SessionEndReason.IDLE_TIMEOUT
    return age_end, SessionEndReason.MAX_AGE


def portal_session_start(*, request, user: User) -> AuthEvent:
    """
    Record a portal login and start tracking its session, in one transaction.

    Django's session gets the same expiry, so the moment that is logged later is the
    moment Django stops accepting the session. Raises ActivityLogUnavailable (and then
    the login must not happen) if either cannot be stored.
    """
    try:
        with transaction.atomic():
            event = auth_event_record_from_request(request=request, user=user, event_type=EventType.LOGIN)
            if event.session_ref:
                expires_at, reason = _session_expiry(started_at=event.occurred_at, now=event.occurred_at)
                PortalSession.objects.create(
                    session_ref=event.session_ref, user=user, started_at=event.occurred_at,
                    expires_at=expires_at, expiry_reason=reason, ip=event.ip, user_agent=event.user_agent,
                )
                request.session.set_expiry(expires_at)
                request.session[_REFRESHED_AT] = event.occurred_at.isoformat()
    except DatabaseError as exc:
        raise ActivityLogUnavailable(f"Could not track the session of {user.email}: {exc}") from exc
    return event


def portal_session_logout(*, request, user: User) -> AuthEvent:
    """Record a portal logout and stop tracking its session, in one transaction."""
    try:
        with transaction.atomic():
            event = auth_event_record_from_request(request=request, user=user, event_type=EventType.LOGOUT)
            if event.session_ref:
                PortalSession.objects.filter(session_ref=event.session_ref).delete()
    except DatabaseError as exc:
        raise ActivityLogUnavailable(f"Could not close the session of {user.email}: {exc}") from exc
    return event


def portal_session_refresh(*, session, previous_ref: str = "", now: datetime | None = None) -> None:
    """
    Push a portal session's idle expiry forward after a request, at most once per
    PORTAL_SESSION_REFRESH_INTERVAL, never past the maximum age and never for a session
    that has already expired. `previous_ref` follows a session whose key changed during
    the request (update_session_auth_hash after a password change).
    """
    now = now or timezone.now()
    ref = session_ref_for(session.session_key)
    if previous_ref and previous_ref != ref:
        PortalSession.objects.filter(session_ref=previous_ref).update(session_ref=ref)
    elif (last := session.get(_REFRESHED_AT)) and now - datetime.fromisoformat(last) < timedelta(
        seconds=settings.PORTAL_SESSION_REFRESH_INTERVAL
    ):
        return
    started_at = PortalSession.objects.filter(session_ref=ref).values_list("started_at", flat=True).first()
    if started_at is None:
        return  # not a tracked session, e.g. one that began before sessions were tracked
    expires_at, reason = _session_expiry(started_at=started_at, now=now)
    if PortalSession.objects.filter(session_ref=ref, expires_at__gt=now).update(expires_at=expires_at, expiry_reason=reason):
        session.set_expiry(expires_at)
        session[_REFRESHED_AT] = now.isoformat()


def _portal_session_end(*, pk: int, at: datetime, reason: str, due_only: bool = False) -> bool:
    """
    Record session_expired for one tracked session and stop tracking it. It ended at `at`
    for `reason`, or earlier at its own expiry if that came first. Skips a session that
    another process is ending right now (PostgreSQL row lock, skip locked; SQLite
    serialises writers anyway). Returns whether this call recorded the end.
    """
    with transaction.atomic():
        tracked = PortalSession.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
        if tracked is None or (due_only and tracked.expires_at > at):
            return False
        if tracked.expires_at <= at:
            at, reason = tracked.expires_at, tracked.expiry_reason
        try:
            auth_event_record(
                user=tracked.user, event_type=EventType.SESSION_EXPIRED, ip=tracked.ip,
                user_agent=tracked.user_agent, session_ref=tracked.session_ref, reason=reason, occurred_at=at,
            )
        except ActivityLogUnavailable as exc:
            # The unique (session_ref, event_type) constraint: the end is already logged.
            # Anything else (including other constraint errors) must not be swallowed.
            already = AuthEvent.objects.filter(session_ref=tracked.session_ref, event_type=EventType.SESSION_EXPIRED)
            if not (isinstance(exc.__cause__, IntegrityError) and already.exists()):
                raise
        tracked.delete()
    return True


def portal_sessions_expire_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """
    Record session_expired, at the moment of expiry, for every tracked portal session
    whose expiry has passed. Idempotent, and safe to run in several processes at once:
    each session is ended by exactly one of them. Returns how many this call recorded.
    """
    now = now or timezone.now()
    recorded, last_pk = 0, 0
    due = PortalSession.objects.filter(expires_at__lte=now)
    while True:
        pks = list(due.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch])
        for pk in pks:
            recorded += _portal_session_end(pk=pk, at=now, reason="", due_only=True)
        if len(pks) < batch:
            return recorded
        last_pk = pks[-1]


def portal_sessions_end_for_password_change(*, user: User, keep_session_ref: str = "",
                                            at: datetime | None = None) -> int:
    """
    A changed password ends every other session of `user` (Django stops accepting them):
    record each end now. `keep_session_ref` is the session that made the change and
    stays signed in. Returns how many ends were recorded.
    """
    at = at or timezone.now()
    others = PortalSession.objects.filter(user=user)
    if keep_session_ref:
        others = others.exclude(session_ref=keep_session_ref)
    return sum(
        _portal_session_end(pk=pk, at=at, reason=SessionEndReason.PASSWORD_CHANGED)
        for pk in others.values_list("pk", flat=True)
    )
