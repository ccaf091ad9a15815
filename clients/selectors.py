from django.db.models import OuterRef, Q, QuerySet, Subquery

from activitylog.models import AuthEvent, EventType
from clients.models import Agency, Client


def clients_for_agency(*, agency: Agency, q: str = "", status: str = "") -> QuerySet[Client]:
    """An agency's clients with their last portal login, for the Clients page."""
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
    # One index probe per listed client on (client, event_type, occurred_at).
    last_login = (
        AuthEvent.objects.filter(client_id=OuterRef("pk"), event_type=EventType.LOGIN)
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    return clients.annotate(last_login=Subquery(last_login)).order_by("name", "id")
