"""The soak's own PostgreSQL database, created afresh each run, and the people in it."""

from dataclasses import dataclass

import dj_database_url
import psycopg
from psycopg import sql

PASSWORD = "soak-password-not-for-production"


def recreate_database(url: str) -> None:
    """Drop the soak database if it exists and create it empty (the log's triggers refuse anything less)."""
    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ValueError("SOAK_DATABASE_URL must be a postgres:// URL")
    with psycopg.connect(
        host=config["HOST"] or "127.0.0.1", port=config["PORT"] or 5432, user=config["USER"],
        password=config["PASSWORD"] or None, dbname="postgres", autocommit=True, connect_timeout=5,
    ) as conn:
        name = sql.Identifier(config["NAME"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


@dataclass(frozen=True)
class Tab:
    """One open Activity Log tab: whose, which client's log, on which server, with which filter."""

    staff: str
    client: str
    server: int
    event_type: str | None = None

    def shows(self, client: str, event_type: str) -> bool:
        return client == self.client and self.event_type in (None, event_type)


# Acme has two clients and three staff who watch them; Globex's manager watches Globex's
# client and must see none of Acme's events. Tabs are spread over both servers, and one
# is filtered to logouts.
CLIENTS = {"northwind": "acme", "contoso": "acme", "initech": "globex"}
STAFF = {
    "manager@acme.test": ("acme", "manager"),
    "admin@acme.test": ("acme", "admin"),
    "superadmin@acme.test": ("acme", "super_admin"),
    "manager@globex.test": ("globex", "manager"),
}
PORTAL_USERS = {
    "anna@northwind.test": "northwind",
    "ben@northwind.test": "northwind",
    "carla@contoso.test": "contoso",
    "dev@initech.test": "initech",
}
TABS = [
    Tab("manager@acme.test", "northwind", 0),
    Tab("manager@acme.test", "northwind", 1),
    Tab("admin@acme.test", "northwind", 0, event_type="logout"),
    Tab("admin@acme.test", "contoso", 1),
    Tab("superadmin@acme.test", "northwind", 1),
    Tab("superadmin@acme.test", "contoso", 0),
    Tab("manager@globex.test", "initech", 0),
    Tab("manager@globex.test", "initech", 1),
]


def make_people() -> dict[str, int]:
    """Create the agencies, clients, staff and portal users; return each client's id by key."""
    from django.contrib.auth.hashers import make_password

    from clients.models import Agency, Client, ClientStatus, StaffMembership, User

    password = make_password(PASSWORD)  # one full-strength hash for everyone: PBKDF2 is slow on purpose
    agencies = {
        slug: Agency.objects.create(slug=slug, name=slug.title(), time_zone="UTC") for slug in ("acme", "globex")
    }
    clients = {
        key: Client.objects.create(agency=agencies[agency], name=key.title(), email=f"hello@{key}.test",
                                   status=ClientStatus.ACTIVE)
        for key, agency in CLIENTS.items()
    }
    for email, (agency, role) in STAFF.items():
        user = User.objects.create_user(email=email)
        User.objects.filter(pk=user.pk).update(password=password)
        StaffMembership.objects.create(user=user, agency=agencies[agency], role=role)
    for email, client in PORTAL_USERS.items():
        user = User.objects.create_user(email=email, client=clients[client])
        User.objects.filter(pk=user.pk).update(password=password)
    return {key: client.pk for key, client in clients.items()}
