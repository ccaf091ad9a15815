"""
Auth signals (and password changes) → the recording service.

Django sends these signals from every login path (the portal form, the test client,
any future SSO view), so listening here is what makes capture complete. Staff sign-ins
are not client events; for staff we only tell open sockets (see live.py) to check their
access at once when it may have ended: a sign-out, a deleted session, a change of role,
membership, account or password, or their client moving to another agency. Changes that
send no signal are caught by the sockets' own periodic check (consumers.py).

Failed sign-ins are throttled (clients/throttle.py): the failure that reaches the limit
is followed by one login_failed event with the reason "locked_out", and the attempts
refused while the lockout lasts record nothing, so a flood cannot bury a client's log.
"""

import logging
from functools import partial

# django-axes counts each failed sign-in in its own user_login_failed receiver. Importing
# its signals here connects that receiver before ours (receivers run in the order they
# were connected), so ours sees axes' verdict on the failure it is recording.
import axes.signals  # noqa: F401
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from activitylog import live
from activitylog.models import EventType, FailureReason
from activitylog.services import auth_event_record_from_request, session_ref_for
from activitylog.sessions import (
    is_portal_session,
    portal_session_logout,
    portal_session_start,
    portal_sessions_password_changed,
)
from agencyhandy.lib.client_ip import client_ip
from clients.models import Client, ClientStatus, StaffMembership, User
from clients.throttle import refused_while_locked_out

logger = logging.getLogger("activitylog")


@receiver(user_logged_in, dispatch_uid="activitylog.login")
def _record_login(sender, request, user, **kwargs) -> None:
    if user.client_id is not None:
        # Raising here aborts login() before the session is saved: fail closed.
        portal_session_start(request=request, user=user)


@receiver(user_logged_out, dispatch_uid="activitylog.logout")
def _record_logout(sender, request, user, **kwargs) -> None:
    # A staff sign-out deletes its session, and that deletion tells its sockets (below).
    if user is not None and user.client_id is not None:
        portal_session_logout(request=request, user=user)


@receiver(post_save, sender=StaffMembership, dispatch_uid="activitylog.membership_saved")
@receiver(post_delete, sender=StaffMembership, dispatch_uid="activitylog.membership_deleted")
def _membership_changed(sender, instance, **kwargs) -> None:
    transaction.on_commit(partial(live.staff_access_changed, instance.user_id))


@receiver(post_save, sender=User, dispatch_uid="activitylog.user_saved")
def _staff_user_changed(sender, instance, update_fields=None, **kwargs) -> None:
    # Deactivation ends access. Every login saves last_login; that changes nothing.
    if instance.client_id is None and update_fields != frozenset({"last_login"}):
        transaction.on_commit(partial(live.staff_access_changed, instance.pk))


@receiver(post_delete, sender=Session, dispatch_uid="activitylog.session_deleted")
def _session_deleted(sender, instance, **kwargs) -> None:
    # A sign-out, an admin ending someone's sessions, a flush after a failed auth-hash
    # check, a deleted user. Expired sessions (clearsessions) are left to the sockets' own
    # check, and portal sessions have no sockets to tell.
    if instance.expire_date <= timezone.now():
        return
    data = instance.get_decoded()
    if is_portal_session(data):
        return
    user_id = data.get(SESSION_KEY)
    if user_id is not None and str(user_id).isdigit():
        session_ref = session_ref_for(instance.session_key)
        transaction.on_commit(partial(live.staff_session_ended, int(user_id), session_ref))


def _save_changes(instance, field_name: str, update_fields) -> bool:
    """
    Whether saving `instance` changes `field_name` from the value stored now: one query,
    and none for a save that cannot touch the field (a new row, or update_fields without it).
    """
    field = type(instance)._meta.get_field(field_name)
    if instance.pk is None or (update_fields is not None and not {field.name, field.attname} & update_fields):
        return False
    stored = type(instance)._base_manager.filter(pk=instance.pk).values_list(field.attname, flat=True).first()
    return stored is not None and stored != getattr(instance, field.attname)


@receiver(pre_save, sender=Client, dispatch_uid="activitylog.client_move_noticed")
def _notice_client_move(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    instance._activitylog_moved = not raw and _save_changes(instance, "agency", update_fields)


@receiver(post_save, sender=Client, dispatch_uid="activitylog.client_moved")
def _client_moved(sender, instance, **kwargs) -> None:
    if getattr(instance, "_activitylog_moved", False):
        instance._activitylog_moved = False
        # The old agency's open tabs must stop at once; each socket checks and closes.
        transaction.on_commit(partial(live.client_access_changed, instance.pk))


@receiver(pre_save, sender=User, dispatch_uid="activitylog.password_change_noticed")
def _notice_password_change(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    # Any change of the stored hash (a new password, an unusable one, even a hasher upgrade)
    # changes the session auth hash, and Django stops accepting the user's other sessions.
    # Staff have no tracked portal sessions; a sign-in's save of last_login costs no query.
    instance._activitylog_password_changed = (
        not raw and instance.client_id is not None and _save_changes(instance, "password", update_fields)
    )


@receiver(post_save, sender=User, dispatch_uid="activitylog.password_change")
def _end_sessions_on_password_change(sender, instance, **kwargs) -> None:
    if getattr(instance, "_activitylog_password_changed", False):
        instance._activitylog_password_changed = False
        # User.save() is atomic: if these cannot be recorded, the password does not change.
        portal_sessions_password_changed(user=instance)


def _failure_reason(user: User) -> str:
    if not user.is_active:
        return FailureReason.ACCOUNT_INACTIVE
    if user.client.is_archived:
        return FailureReason.CLIENT_ARCHIVED
    if user.client.status == ClientStatus.INACTIVE:
        return FailureReason.CLIENT_INACTIVE
    return FailureReason.BAD_PASSWORD


@receiver(user_login_failed, dispatch_uid="activitylog.login_failed")
def _record_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if request is not None and refused_while_locked_out(request):
        return  # refused before its password was checked; the lockout is already recorded
    email = (credentials.get("username") or credentials.get("email") or "").strip()
    user = (
        User.objects.select_related("client").filter(email__iexact=email).first() if email else None
    )
    # axes' receiver ran first: this failure may have been the last one allowed.
    locked_out = getattr(request, "axes_locked_out", False)
    ip = client_ip(request.META) if request is not None else "-"
    if user is None or user.client_id is None:
        # Nothing ties this attempt to a client (an unknown email), or it is staff: not a
        # client event. Keep it for ops, never in a client's log.
        if user is None:
            logger.warning("Failed login for unknown email %r from %s", email[:254], ip)
        if locked_out:
            logger.warning("Sign-in locked out after repeated failures for %r from %s", email[:254], ip)
        return
    auth_event_record_from_request(
        request=request, user=user, event_type=EventType.LOGIN_FAILED, reason=_failure_reason(user)
    )
    if locked_out:
        auth_event_record_from_request(
            request=request, user=user, event_type=EventType.LOGIN_FAILED, reason=FailureReason.LOCKED_OUT
        )
