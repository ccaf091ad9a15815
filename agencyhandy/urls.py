from django.contrib import admin
from django.urls import include, path

from clients import auth_views
from clients.views import home

admin.site.site_header = "AgencyHandy platform admin"
admin.site.site_title = "AgencyHandy admin"

portal_patterns = (
    [
        path("", auth_views.portal_home, name="home"),
        path("login/", auth_views.PortalLoginView.as_view(), name="login"),
        path("logout/", auth_views.portal_logout, name="logout"),
    ],
    "portal",
)

urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.StaffLoginView.as_view(), name="login"),
    path("logout/", auth_views.staff_logout, name="logout"),
    path("portal/", include(portal_patterns)),
    path("clients/", include("clients.urls")),
    path("clients/<int:client_id>/activity/", include("activitylog.urls")),
    path("admin/", admin.site.urls),
]

# A database that cannot be reached from a middleware is a 503, not a 500 (see there).
handler500 = "agencyhandy.unavailable.server_error"
