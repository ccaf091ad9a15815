from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

from activitylog.access import membership_of


def staff_required(view):
    """
    Admit agency staff only; sets `request.membership`.

    Anonymous visitors go to the staff login (a full-page redirect even from an htmx
    request, so a login form is never swapped into a tab). Portal users are sent to
    the portal. Signed-in users without an agency get 403.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
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
        return view(request, *args, **kwargs)

    return wrapper
