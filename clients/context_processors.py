from clients.staff import membership_of


def staff(request) -> dict:
    """
    `membership`: the signed-in staff member's agency and role, for the page header;
    `zone`: the zone they read times in (clients/clock.py), for the switch beside it.
    """
    return {"membership": membership_of(getattr(request, "user", None)), "zone": getattr(request, "zone", None)}
