"""
Portal sessions, from sign-in to their end. A client who closes the browser never signs
out; the session just expires. So every open portal session has a PortalSession row, and
its end is logged either way: by the logout, or as session_expired at the moment it
expired or was cut short (idle timeout, maximum age, a password change).

- `portal_session_start` / `portal_session_logout`: the login and logout events, with the
  row they open and close (called by the receivers of Django's auth signals);
- `PortalSessionMiddleware`: while the client uses the portal, pushes the idle expiry
  forward (mirrored into Django's own session expiry, so both end at the same moment);
- `portal_sessions_expire_due`: `manage.py record_session_expiries`, every minute;
- `portal_sessions_password_changed`: a new password ends the user's other sessions.
"""

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from activitylog.models import AuthEvent, EventType, PortalSession, SessionEndReason
from activitylog.services import (
    ActivityLogUnavailable,
    auth_event_record,
    auth_event_record_from_request,
    recording_transaction,
    session_ref_for,
)
from agencyhandy.lib.prepared import prepared_statements
from clients.models import User

_REFRESHED_AT = "activitylog.refreshed_at"


def is_portal_session(session_data: dict) -> bool:
    """Whether a Django session's data is that of a tracked portal session."""
    return _REFRESHED_AT in session_data


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
        with recording_transaction():
            event = auth_event_record_from_request(request=request, user=user, event_type=EventType.LOGIN)
            if event.session_ref:
                expires_at, reason = _session_expiry(started_at=event.occurred_at, now=event.occurred_at)
                _portal_session_insert(
                    session_ref=event.session_ref, user_id=user.pk, started_at=event.occurred_at,
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
        with recording_transaction():
            event = auth_event_record_from_request(request=request, user=user, event_type=EventType.LOGOUT)
            if event.session_ref:
                PortalSession.objects.filter(session_ref=event.session_ref).delete()
    except DatabaseError as exc:
        raise ActivityLogUnavailable(f"Could not close the session of {user.email}: {exc}") from exc
    return event


def _portal_session_insert(**values) -> None:
    """
    INSERT a PortalSession row of these values (by attname) without asking its id back
    (the ORM's create() does, with RETURNING): no answer to wait for, so it travels with
    the login's insert and COMMIT in one round trip (services.recording_transaction).

    Prepared, as the event's insert is (agencyhandy/lib/prepared.py): no model instance,
    no SQL text built and no parameters quoted by Python at every login.
    """
    postgresql = connection.vendor == "postgresql"
    with prepared_statements() as execute:
        execute(_SESSION_INSERT_SQL, [
            values[field.attname] if postgresql else field.get_db_prep_save(values[field.attname], connection)
            for field in _SESSION_FIELDS
        ])


_SESSION_FIELDS = [field for field in PortalSession._meta.concrete_fields if not field.primary_key]
_SESSION_INSERT_SQL = (
    f"INSERT INTO {connection.ops.quote_name(PortalSession._meta.db_table)}"
    f" ({', '.join(connection.ops.quote_name(field.column) for field in _SESSION_FIELDS)})"
    f" VALUES ({', '.join(['%s'] * len(_SESSION_FIELDS))})"
)


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


def portal_sessions_password_changed(*, user: User, at: datetime | None = None) -> int:
    """
    `user`'s password changed, so Django stops accepting their sessions: record the end
    of each now, with the reason password_changed. Returns how many were recorded.

    One exception: when the user changed it themselves, in a portal request, Django's
    update_session_auth_hash may keep that request's session signed in (under a new key).
    That one is settled after the view, by PortalSessionMiddleware: followed to its new
    key if it was kept, ended like the others if not. The model's save() that sends us
    here carries no request; the middleware's context variable says which one this is.
    """
    at = at or timezone.now()
    current = _current.get()
    if current is None or current.user_id != user.pk:
        return _end_sessions_of(user, at=at)
    current.password_changed_at = at
    return _end_sessions_of(user, at=at, keep_session_ref=current.session_ref)


def _end_sessions_of(user: User, *, at: datetime, keep_session_ref: str = "") -> int:
    others = PortalSession.objects.filter(user=user)
    if keep_session_ref:
        others = others.exclude(session_ref=keep_session_ref)
    return sum(
        _portal_session_end(pk=pk, at=at, reason=SessionEndReason.PASSWORD_CHANGED)
        for pk in others.values_list("pk", flat=True)
    )


# While the portal is in use ----------------------------------------------------------


@dataclass
class _PortalRequest:
    user_id: int
    session_ref: str
    password_changed_at: datetime | None = None


_current: ContextVar[_PortalRequest | None] = ContextVar("activitylog_portal_request", default=None)


class PortalSessionMiddleware:
    """
    For requests of signed-in portal users: refresh the session's idle expiry after the
    view, and follow a session through a password change. Sync only, like the views it
    serves; it must come after AuthenticationMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if not (user.is_authenticated and user.client_id is not None):
            return self.get_response(request)
        current = _PortalRequest(user_id=user.pk, session_ref=session_ref_for(request.session.session_key))
        token = _current.set(current)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        if current.password_changed_at is not None:
            self._after_password_change(request, current)
        elif request.user.is_authenticated and request.session.session_key:
            portal_session_refresh(session=request.session)
        return response

    def _after_password_change(self, request, current: _PortalRequest) -> None:
        user = User.objects.filter(pk=current.user_id).first()
        kept = (
            user is not None and request.user.is_authenticated
            and request.session.get(HASH_SESSION_KEY) == user.get_session_auth_hash()
        )
        if kept:
            # update_session_auth_hash kept this session signed in (under a new key).
            portal_session_refresh(session=request.session, previous_ref=current.session_ref)
        elif user is not None:
            # Not kept: Django will refuse this session from now on, like the others.
            _end_sessions_of(user, at=current.password_changed_at)
