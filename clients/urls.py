from django.urls import path

from activitylog.export_views import activity_export
from activitylog.views import activity_tab
from clients import views

app_name = "clients"

urlpatterns = [
    path("", views.client_list, name="list"),
    path("<int:client_id>/", views.client_detail, name="detail"),
    path("<int:client_id>/activity/", activity_tab, name="activity"),
    path("<int:client_id>/activity/export.csv", activity_export, name="activity-export"),
]
