from django.db.models import Q, QuerySet

from clients.models import Agency, Client


def clients_for_agency(*, agency: Agency, q: str = "", status: str = "") -> QuerySet[Client]:
    """An agency's clients for the Clients page, by name, narrowed by a search and a status."""
    clients = Client.objects.filter(agency=agency)
    if status == "archived":
        clients = clients.filter(is_archived=True)
    else:
        clients = clients.filter(is_archived=False)
        if status:
            clients = clients.filter(status=status)
    if q:
        clients = clients.filter(
            Q(name__icontains=q) | Q(email__icontains=q) | Q(company_name__icontains=q)
            | Q(portal_users__email__icontains=q)
        ).distinct()
    return clients.order_by("name", "id")
