"""
Agency staff: who is staff, in which agency and with which role, and the decorator that
admits only them. The clients app owns staff identity; the activity log builds on it
(activitylog/access.py decides which roles may read a log).
"""

from functools import wraps

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from clients.models import StaffMembership, User


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware."""

    htmx: HtmxDetails


class StaffHttpRequest(HtmxHttpRequest):
    """A request admitted by `staff_required`: the user is staff of `membership.agency`."""

    user: User
    membership: StaffMembership


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


def _refuse_non_staff(request):
    """The response that turns a non-staff visitor away, or None for staff (sets request.membership)."""
    user = request.user
    if not user.is_authenticated:
        response = redirect_to_login(request.get_full_path())
        if request.htmx:
            return HttpResponseClientRedirect(response.url)
        return response
    if user.client_id is not None:
        if request.htmx:
            return HttpResponseClientRedirect("/portal/")
        return redirect("portal:home")
    request.membership = membership_of(user)
    if request.membership is None:
        raise PermissionDenied("This page is for agency staff.")
    return None


def staff_required(view):
    """
    Admit agency staff only; sets `request.membership`. Works on sync and async views.

    Anonymous visitors go to the staff login (a full-page redirect even from an htmx
    request, so a login form is never swapped into a tab). Portal users are sent to
    the portal. Signed-in users without an agency get 403.
    """
    if iscoroutinefunction(view):

        @wraps(view)
        async def async_wrapper(request, *args, **kwargs):
            # Loading the user and the membership touches the database: do it off the loop.
            refusal = await sync_to_async(_refuse_non_staff)(request)
            if refusal is not None:
                return refusal
            return await view(request, *args, **kwargs)

        return async_wrapper

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        refusal = _refuse_non_staff(request)
        if refusal is not None:
            return refusal
        return view(request, *args, **kwargs)

    return wrapper
