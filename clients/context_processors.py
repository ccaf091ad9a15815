from clients.staff import membership_of


def staff(request) -> dict:
    """`membership`: the signed-in staff member's agency and role, for the page header."""
    return {"membership": membership_of(getattr(request, "user", None))}
