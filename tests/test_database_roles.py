"""
On PostgreSQL the app connects as a role that may read and append to the activity log
but not change, empty or drop it, nor alter or disable its triggers; an owner role runs
the migrations (docs/deployment.md). These tests connect as the app role for real.

They need DATABASE_APP_ROLE, the app role's name (.ci/run creates the roles and sets
it); the suite itself then runs as the owner role.
"""

import os
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from activitylog.models import AuthEvent, EventType, PortalSession, SessionEndReason
from activitylog.services import auth_event_record
from demo.management.commands.simulate_portal_activity import _Browser
from tests.conftest import PASSWORD
from tests.servers import asgi_server
from tests.subprocesses import manage
from tests.subprocesses import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)  # the app role's connections see committed rows

TRIGGERS = ("activitylog_authevent_no_update_delete", "activitylog_authevent_no_truncate")


@pytest.fixture
def app_role() -> str:
    if connection.vendor != "postgresql":
        pytest.skip("database roles are PostgreSQL's")
    role = os.environ.get("DATABASE_APP_ROLE")
    if not role:
        pytest.skip("set DATABASE_APP_ROLE to the app's role (docs/deployment.md), as .ci/run does")
    return role


@pytest.fixture
def as_app(app_role):
    """A connection of our own as the app role, as a compromised app server would have."""
    with psycopg.connect(database_url(role=app_role), autocommit=True) as conn:
        yield conn


def _enabled_triggers() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger"
            " WHERE tgrelid = 'activitylog_authevent'::regclass AND tgenabled = 'O' AND NOT tgisinternal"
        )
        return {name for (name,) in cursor.fetchall()}


def _privileges(role: str) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
               WHERE a.grantee = %s::regrole AND c.relnamespace = current_schema()::regnamespace ORDER BY 1, 2""",
            [role],
        )
        return cursor.fetchall()


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("ALTER TABLE activitylog_authevent DISABLE TRIGGER ALL", "must be owner of table activitylog_authevent"),
        (f"ALTER TABLE activitylog_authevent DISABLE TRIGGER {TRIGGERS[0]}", "must be owner of (table|relation) activitylog_authevent"),
        (f"DROP TRIGGER {TRIGGERS[0]} ON activitylog_authevent", "must be owner of (table|relation) activitylog_authevent"),
        (f"DROP TRIGGER {TRIGGERS[1]} ON activitylog_authevent", "must be owner of (table|relation) activitylog_authevent"),
        ("ALTER TABLE activitylog_authevent OWNER TO CURRENT_USER", "must be owner of (table|relation) activitylog_authevent"),
        ("DROP TABLE activitylog_authevent CASCADE", "must be owner of (table|relation) activitylog_authevent"),
        ("UPDATE activitylog_authevent SET ip = '192.0.2.66'", "permission denied for table activitylog_authevent"),
        ("DELETE FROM activitylog_authevent", "permission denied for table activitylog_authevent"),
        ("TRUNCATE activitylog_authevent", "permission denied for table activitylog_authevent"),
        # Replica mode would skip ordinary triggers for the whole session.
        ("SET session_replication_role = replica", "permission denied to set parameter"),
    ],
)
def test_the_app_role_cannot_change_empty_drop_or_unguard_the_log(acme, as_app, statement, refusal):
    event = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, ip="203.0.113.1")

    # Refused by the role's privileges, before any trigger is reached (their message says "append-only").
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal):
        as_app.execute(statement)

    assert AuthEvent.objects.filter(pk=event.pk, ip="203.0.113.1").exists()
    assert _enabled_triggers() == set(TRIGGERS)


def test_the_app_role_records_events_through_the_recording_service(server_passwords, acme, app_role):
    now = timezone.now()
    PortalSession.objects.create(
        session_ref="a" * 64, user=acme.portal_user, started_at=now - timedelta(hours=2),
        expires_at=now - timedelta(minutes=5), expiry_reason=SessionEndReason.IDLE_TIMEOUT,
    )
    whoami = manage("shell", "-c", "from django.db import connection\n"
                                   "with connection.cursor() as c: c.execute('SELECT current_user'); print(c.fetchone()[0])")
    assert whoami.stdout.splitlines()[-1] == app_role, whoami.stderr

    # The cron command and a real portal login, each in a process connected as the app role.
    cron = manage("record_session_expiries")
    with asgi_server() as url:
        browser = _Browser(acme.portal_user.email, "Mozilla/5.0 (roles test)")
        _, page = browser.submit(f"{url}/portal/login/", f"{url}/portal/login/",
                                 {"username": acme.portal_user.email, "password": PASSWORD})

    assert cron.returncode == 0, cron.stderr
    assert "Sign out" in page
    assert list(AuthEvent.objects.order_by("seq").values_list("event_type", flat=True)) == [
        EventType.SESSION_EXPIRED, EventType.LOGIN,
    ]
    out = StringIO()
    call_command("verify_activity_log", stdout=out)
    assert "All chains intact" in out.getvalue()


def test_the_app_role_has_ordinary_rights_elsewhere_even_on_tables_created_later(acme, as_app):
    as_app.execute("UPDATE clients_client SET name = name || ' Ltd' WHERE id = %s", [acme.client.pk])
    as_app.execute("DELETE FROM django_session")
    with connection.cursor() as cursor:  # the owner, as a later migration would
        cursor.execute("CREATE TABLE later_feature (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text)")
    try:
        as_app.execute("INSERT INTO later_feature (note) VALUES ('new')")
        as_app.execute("UPDATE later_feature SET note = 'changed'")
        as_app.execute("DELETE FROM later_feature")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE later_feature")
    # Only the owner records migrations.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())")


def test_granting_again_changes_nothing_and_takes_back_a_privilege_given_by_hand(app_role):
    before = _privileges(app_role)
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT UPDATE, DELETE, TRUNCATE ON activitylog_authevent TO "{app_role}"')

    call_command("grant_app_role", app_role, stdout=StringIO())
    call_command("grant_app_role", app_role, stdout=StringIO())

    assert _privileges(app_role) == before
    assert {p for table, p in before if table == "activitylog_authevent"} == {"SELECT", "INSERT"}


def test_an_unsafe_or_unknown_app_role_is_refused_with_one_line(app_role):
    with pytest.raises(CommandError, match="Run this as the owner role, not as the app role") as refused:
        call_command("grant_app_role", connection.settings_dict["USER"], stdout=StringIO())
    assert refused.value.returncode == 1

    unknown = manage("grant_app_role", "no_such_role")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == [
        "CommandError: There is no database role 'no_such_role'; create it first (see docs/deployment.md)."
    ]


@pytest.mark.django_db
def test_on_sqlite_granting_is_a_clear_usage_error():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's answer")
    with pytest.raises(CommandError, match="Database roles are PostgreSQL's") as refused:
        call_command("grant_app_role", "agencyhandy_app")
    assert refused.value.returncode == 2
