"""
Login throttling, with django-axes, on both sign-in pages (settings: the AXES_* block).

After LOGIN_FAILURE_LIMIT failed sign-ins for one account from one IP, that account and
IP are locked out until LOGIN_COOLOFF_SECONDS after the last failure. The backend below,
first in AUTHENTICATION_BACKENDS, refuses them before any password is checked, and the
visitor gets the lockout page: 429 Too Many Requests, with Retry-After. The client's
activity log records the lockout once (activitylog/receivers.py); the refused attempts
after it record nothing.

The other functions here are the hooks that the AXES_* settings name.
"""

import math
from datetime import datetime

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.helpers import get_client_parameters, get_cool_off
from axes.models import AccessAttempt
from django.db.models import Max
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

_REFUSED = "login_refused_while_locked_out"


class LoginThrottleBackend(AxesStandaloneBackend):
    """
    django-axes' lockout check and nothing else: a locked-out account and IP is refused
    here, so the backends after it never see the password. Django still sends
    user_login_failed for the refusal; `refused_while_locked_out()` tells its receivers
    that it was not a new failure.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            # authenticate() from a shell or Client.login(): there is no visitor to throttle.
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            setattr(request, _REFUSED, True)
            raise


def refused_while_locked_out(request) -> bool:
    """Whether this sign-in was refused by a lockout, before its password was checked."""
    return getattr(request, _REFUSED, False)


def attempt_username(request, credentials: dict | None) -> str | None:
    """
    The account an attempt counts against (AXES_USERNAME_CALLABLE): the email as
    EmailBackend matches it, in any case, so that guessing at 'Client@ACME.test' counts
    with guessing at 'client@acme.test'.
    """
    if credentials:
        value = credentials.get("username")
    else:
        value = request.POST.get("username") if request is not None else None
    return value.strip().lower() if value else None


def _last_failure(request, credentials: dict | None) -> datetime | None:
    """When the account and IP of `request` last failed, as axes counts it."""
    ua = getattr(request, "axes_user_agent", "")
    filters = get_client_parameters(
        attempt_username(request, credentials), request.axes_ip_address, ua, request, credentials
    )
    times = [AccessAttempt.objects.filter(**f).aggregate(t=Max("attempt_time"))["t"] for f in filters]
    return max((t for t in times if t is not None), default=None)


def seconds_until_unlocked(request, credentials: dict | None = None) -> int:
    """Whole seconds until the lockout of this request's account and IP lifts (at least 1)."""
    cool_off = get_cool_off(request)
    last = _last_failure(request, credentials)
    if last is None:
        return math.ceil(cool_off.total_seconds())
    return max(1, math.ceil((last + cool_off - timezone.now()).total_seconds()))


def lockout_response(request, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """
    What a locked-out sign-in gets (AXES_LOCKOUT_CALLABLE): the branded lockout page,
    429 Too Many Requests, with Retry-After. axes' middleware does not always pass the
    credentials (under ASGI they arrive as `original_response`), so they are not relied on.
    """
    credentials = credentials if isinstance(credentials, dict) else None
    retry_after = seconds_until_unlocked(request, credentials)
    portal = request.resolver_match is not None and request.resolver_match.namespace == "portal"
    response = render(
        request,
        "registration/locked_out.html",
        {"portal": portal, "minutes": math.ceil(retry_after / 60)},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response
