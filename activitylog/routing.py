from django.urls import path, re_path

from activitylog.consumers import ActivityLogConsumer, NotFoundConsumer

websocket_urlpatterns = [
    path("ws/clients/<int:client_id>/activity/", ActivityLogConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),
]
