from activitylog.access import may_read_logs
from clients.staff import membership_of


def activity_log(request) -> dict:
    """`can_view_logs`: whether to offer the Activity Log tab on the client pages."""
    return {"can_view_logs": may_read_logs(membership_of(getattr(request, "user", None)))}
