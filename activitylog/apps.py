from django.apps import AppConfig


class ActivityLogConfig(AppConfig):
    name = "activitylog"
    verbose_name = "Client activity log"

    def ready(self) -> None:
        # Connects the auth signals to the recording service.
        from activitylog import receivers  # noqa: F401
