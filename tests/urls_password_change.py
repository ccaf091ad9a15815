"""The project's URLs plus a minimal portal "change password" page, for password-change tests."""

from django.contrib.auth import update_session_auth_hash
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST

from agencyhandy.urls import urlpatterns as project_urlpatterns


@require_POST
def change_password(request):
    """What a portal page would do; `keep` chooses whether this session stays signed in."""
    request.user.set_password(request.POST["password"])
    request.user.save()
    if request.POST.get("keep"):
        update_session_auth_hash(request, request.user)
    return HttpResponse("changed")


urlpatterns = [*project_urlpatterns, path("test/change-password/", change_password)]
