from django.utils import timezone

from activitylog.access import membership_of


class AgencyTimezoneMiddleware:
    """Show staff every time in their agency's time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = membership_of(getattr(request, "user", None))
        if membership is not None:
            timezone.activate(membership.agency.tzinfo)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
