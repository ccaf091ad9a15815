"""
Who may read a client's activity log. The tab, its htmx partials, the websocket
consumer, exports and the client pages all ask here and nowhere else.
"""

from django.conf import settings
from django.contrib import auth
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from clients.models import Client, Role, StaffMembership

LOG_ROLES = frozenset({Role.SUPER_ADMIN, Role.ADMIN, Role.MANAGER})
EXPORT_ROLES = frozenset({Role.SUPER_ADMIN, Role.ADMIN})


def membership_of(user) -> StaffMembership | None:
    """
    The staff membership (with its agency) of `user`, or None for anyone else.

    A portal user is never staff, even if a membership row exists for them (the database
    refuses such rows, see clients/migrations/0002; this holds for rows from before it).
    Cached on the user object, which lives for one request (or one websocket connection).
    """
    if user is None or not user.is_authenticated or not user.is_active or user.client_id is not None:
        return None
    if not hasattr(user, "_agency_membership"):
        user._agency_membership = (
            StaffMembership.objects.select_related("agency").filter(user_id=user.pk).first()
        )
    return user._agency_membership


def role_may_view_log(membership: StaffMembership | None) -> bool:
    return membership is not None and membership.role in LOG_ROLES


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
    if not role_may_view_log(membership):
        raise PermissionDenied("Your role cannot see client activity logs.")
    return client


def client_for_activity_export(user, client_id: int) -> Client:
    """
    Return the client whose activity log `user` may download as a file.

    Exporting is for Super Admins and Admins. A Manager, who may read the log, gets
    PermissionDenied; everything else is decided as in client_for_activity_log.
    """
    client = client_for_activity_log(user, client_id)
    if membership_of(user).role not in EXPORT_ROLES:
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
