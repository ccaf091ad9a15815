"""The Activity Log tab of Client Details, under /clients/<client_id>/activity/ (agencyhandy/urls.py)."""

from django.urls import path

from activitylog.export_views import activity_export
from activitylog.views import activity_tab, event_detail

app_name = "activitylog"

urlpatterns = [
    path("", activity_tab, name="tab"),
    path("export.csv", activity_export, name="export"),
    path("events/<int:event_id>/", event_detail, name="event"),
]
