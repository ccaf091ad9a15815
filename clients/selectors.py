from django.db.models import Exists, F, OuterRef, Q, QuerySet

from clients.models import Agency, Client, User


def clients_for_agency(*, agency: Agency, q: str = "", status: str = "", premium: bool = False) -> QuerySet[Client]:
    """An agency's clients for the Clients page, by name, narrowed by a search, a status and premium."""
    clients = Client.objects.filter(agency=agency)
    if status == "archived":
        clients = clients.filter(is_archived=True)
    else:
        clients = clients.filter(is_archived=False)
        if status:
            clients = clients.filter(status=status)
    if premium:
        clients = clients.filter(is_premium=True)
    if q:
        # EXISTS rather than a join: a client with two matching portal users stays one row
        # without DISTINCT, which would make PostgreSQL compute every column of every match.
        portal_user_matches = User.objects.filter(client_id=OuterRef("pk"), email__icontains=q)
        clients = clients.filter(
            Q(name__icontains=q) | Q(email__icontains=q) | Q(company_name__icontains=q) | Exists(portal_user_matches)
        )
    return clients.order_by("name", "id")


def clients_ordered(clients: QuerySet[Client], *, key: str, descending: bool) -> QuerySet[Client]:
    """
    `clients` ordered by `key`, a field or an annotation (`last_login`), then by name and id,
    so that pages never repeat or skip a client. A client without a value (one that never
    logged in) sorts as the lowest: first going up, last going down.
    """
    if key == "name":
        return clients.order_by(*(("-name", "-id") if descending else ("name", "id")))
    first = F(key).desc(nulls_last=True) if descending else F(key).asc(nulls_first=True)
    return clients.order_by(first, "name", "id")
