"""
Every "may they?" of the activity log, and nowhere else: the tab and its htmx partials
(`client_for_activity_log`), the export (`client_for_activity_export`), the websocket,
at its handshake and for as long as it stays open (`socket_verdict`), Django admin
(`may_inspect_every_log`), and the client pages' links and summary (`may_read_logs`,
`may_export_logs`).

Staff identity (who is staff, of which agency, in which role) belongs to the clients app
(clients/staff.py); this module decides what each role may do with a log.
"""

import enum

from django.conf import settings
from django.contrib import auth
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from clients.models import Client, Role, StaffMembership
from clients.staff import membership_of

LOG_ROLES = frozenset({Role.SUPER_ADMIN, Role.ADMIN, Role.MANAGER})
EXPORT_ROLES = frozenset({Role.SUPER_ADMIN, Role.ADMIN})


def may_read_logs(membership: StaffMembership | None) -> bool:
    """Whether this staff role reads its agency's client activity logs."""
    return membership is not None and membership.role in LOG_ROLES


def may_export_logs(membership: StaffMembership | None) -> bool:
    """Whether this staff role downloads its agency's client activity logs as files."""
    return membership is not None and membership.role in EXPORT_ROLES


def client_for_activity_log(user, client_id: int) -> Client:
    """
    Return the client whose activity log `user` may read.

    Raises PermissionDenied for anyone who is not staff with a log role, and Http404 for
    a client of another agency (or none): staff must not learn that it exists.
    """
    membership = membership_of(user)
    if membership is None:
        raise PermissionDenied("Only agency staff can see client activity logs.")
    client = (
        Client.objects.select_related("agency")
        .filter(pk=client_id, agency_id=membership.agency_id)
        .first()
    )
    if client is None:
        raise Http404("No such client.")
    if not may_read_logs(membership):
        raise PermissionDenied("Your role cannot see client activity logs.")
    return client


def client_for_activity_export(user, client_id: int) -> Client:
    """
    Return the client whose activity log `user` may download as a file.

    Exporting is for Super Admins and Admins. A Manager, who may read the log, gets
    PermissionDenied; everything else is decided as in client_for_activity_log.
    """
    client = client_for_activity_log(user, client_id)
    if not may_export_logs(membership_of(user)):
        raise PermissionDenied("Only Super Admins and Admins can export client activity logs.")
    return client


def may_inspect_every_log(user) -> bool:
    """
    Django admin's read-only view of every agency's events: platform superusers only.

    Agency staff read logs in the CRM, scoped to their agency; a portal account never
    reads any log, whatever flags it carries.
    """
    return bool(user is not None and user.is_active and user.is_superuser and user.client_id is None)


def user_of_session(session_key: str | None):
    """
    The user whom the stored session `session_key` still signs in, or None.

    Fresh from the session store and the users table, with the checks Django applies to
    every request: the session exists and has not expired, the user may still sign in
    (active), and has not changed their password since (the session's auth hash). Unlike
    a request, it only looks: a session that fails is left for the browser's next request
    to end. A websocket lives for hours; it asks here again and again, because its
    handshake proved this only once.
    """
    if not session_key:
        return None
    session: SessionBase = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)
    user_id, backend_path = session.get(auth.SESSION_KEY), session.get(auth.BACKEND_SESSION_KEY)
    if user_id is None or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = auth.load_backend(backend_path).get_user(auth.get_user_model()._meta.pk.to_python(user_id))
    if user is None:
        return None
    stored_hash = session.get(auth.HASH_SESSION_KEY) or ""
    current = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return user if any(constant_time_compare(stored_hash, h) for h in current) else None


class SocketVerdict(enum.Enum):
    ALLOWED = "allowed"
    SESSION_ENDED = "session ended"  # signed out, expired, password changed: sign in again
    FORBIDDEN = "forbidden"  # still signed in, but may no longer read this client's log


def socket_verdict(*, session_key: str | None, user_id: int, client_id: int, agency_id: int) -> SocketVerdict:
    """
    Whether an open Activity Log socket may go on: its session still signs in the same
    user, who may still read the client's log, and the client is still in the agency
    whose rows the socket was opened for. Fresh from the database each time.
    """
    user = user_of_session(session_key)
    if user is None or user.pk != user_id:
        return SocketVerdict.SESSION_ENDED
    try:
        client = client_for_activity_log(user, client_id)
    except (PermissionDenied, Http404):
        return SocketVerdict.FORBIDDEN
    return SocketVerdict.ALLOWED if client.agency_id == agency_id else SocketVerdict.FORBIDDEN
