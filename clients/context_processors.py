from activitylog.access import membership_of, role_may_view_log


def staff(request) -> dict:
    membership = membership_of(getattr(request, "user", None))
    return {"membership": membership, "can_view_logs": role_may_view_log(membership)}
