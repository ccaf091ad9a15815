"""Give the app's PostgreSQL role exactly the privileges it needs; run as the owner after every migrate."""

from django.core.management.base import CommandError
from django.db import connection

from activitylog.db_roles import EVENT_TABLE, READ_ONLY_TABLES, NoSuchRole, UnsafeRoles, app_role_grant
from agencyhandy.commands import Command as BaseCommand


class Command(BaseCommand):
    help = (
        "PostgreSQL only. Run as the owner role (the one that runs migrations) after every "
        "migrate: gives ROLE, the role the servers and cron commands connect as, SELECT, "
        "INSERT, UPDATE and DELETE on every table but the activity log, where it gets SELECT "
        "and INSERT only, usage of every sequence, and the same by default on tables and "
        "sequences created later. Idempotent. Exit 2 for bad arguments, 1 when the roles "
        "are unsafe (the app role is a superuser or a member of the owner role, or a table "
        "has another owner)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("role", help="The app's database role, e.g. agencyhandy_app.")

    def handle(self, *args, role: str, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Database roles are PostgreSQL's; this database is " + connection.vendor + ".",
                               returncode=2)
        if not role or len(role) > 63:
            raise CommandError(f"{role!r} is not a PostgreSQL role name.", returncode=2)
        try:
            grants = app_role_grant(role)
        except NoSuchRole as exc:
            raise CommandError(str(exc), returncode=2) from None
        except UnsafeRoles as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{role}: SELECT and INSERT only on {EVENT_TABLE}, SELECT only on {', '.join(READ_ONLY_TABLES)}; "
            f"SELECT, INSERT, UPDATE, DELETE on the other {grants.tables - 1 - len(READ_ONLY_TABLES)} tables; "
            f"usage of {grants.sequences} sequences; the same by default on what {grants.owner} creates later."
        )
