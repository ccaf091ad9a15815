"""
Portal sessions while they are in use: the idle expiry moves forward, and a password
change knows which session made it.
"""

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import HASH_SESSION_KEY

from activitylog.services import portal_session_refresh, portal_sessions_end_for_password_change, session_ref_for
from clients.models import User


@dataclass
class _PortalRequest:
    user_id: int
    session_ref: str
    password_changed_at: datetime | None = None


_current: ContextVar[_PortalRequest | None] = ContextVar("activitylog_portal_request", default=None)


def session_of_current_request(user_id: int) -> str:
    """The session_ref of the request being served, if `user_id` is the portal user making it."""
    current = _current.get()
    return current.session_ref if current is not None and current.user_id == user_id else ""


def note_password_change(user_id: int, at: datetime) -> None:
    """Tell the middleware that the portal user making this request changed their password."""
    current = _current.get()
    if current is not None and current.user_id == user_id:
        current.password_changed_at = at


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
            portal_sessions_end_for_password_change(user=user, at=current.password_changed_at)
