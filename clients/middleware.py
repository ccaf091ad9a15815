from django.utils import timezone
from django.utils.cache import patch_cache_control

from clients.clock import ZONE_COOKIE, zone_choice
from clients.staff import membership_of


class AgencyTimezoneMiddleware:
    """
    Show staff every time in the zone they read times in (`request.zone`): their agency's,
    unless their `tz` cookie chose their browser's or UTC (clients/clock.py).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = membership_of(getattr(request, "user", None))
        if membership is not None:
            request.zone = zone_choice(request.COOKIES.get(ZONE_COOKIE), agency_zone=membership.agency.time_zone)
            timezone.activate(request.zone.tzinfo)
        else:
            request.zone = None
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class PrivatePagesMiddleware:
    """
    Pages for a signed-in user are never stored: `Cache-Control: private, no-store`.

    They show clients' IPs and sign-in history. Without this, after signing out on a
    shared computer, the browser's Back button shows them again from its cache. Views
    that set their own Cache-Control (Django admin's never_cache) keep it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response
