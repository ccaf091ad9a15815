"""
Who may read a client's activity log. The tab, its htmx partials, the websocket
consumer, exports and the client pages all ask here and nowhere else.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from clients.models import Client, Role, StaffMembership

LOG_ROLES = frozenset({Role.SUPER_ADMIN, Role.ADMIN, Role.MANAGER})
EXPORT_ROLES = frozenset({Role.SUPER_ADMIN, Role.ADMIN})


def membership_of(user) -> StaffMembership | None:
    """
    The staff membership (with its agency) of `user`, or None for anyone else.

    Cached on the user object, which lives for one request (or one websocket connection).
    """
    if user is None or not user.is_authenticated or not user.is_active:
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
