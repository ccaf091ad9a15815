"""
Least-privilege PostgreSQL roles: the owner role runs the migrations and owns every
table; the app role, which the servers and cron commands use, may read and append to the
activity log but not change, empty or drop it, nor alter or disable its triggers (only a
table's owner can). docs/deployment.md has the SQL that creates the two roles.

`app_role_grant` is run as the owner after every `migrate` (`manage.py grant_app_role`).
It is idempotent: it sets the app role's privileges on every table and sequence to
exactly what the app needs, and default privileges so that tables and sequences that
later migrations create are usable before it runs again.
"""

from dataclasses import dataclass

from django.db import connection, transaction
from psycopg import sql

from activitylog.db_guards import TABLE as EVENT_TABLE

TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
# The log is appended to and read, never changed: UPDATE, DELETE and TRUNCATE are withheld
# here, below the triggers that refuse them, so the app role cannot get round them either.
EVENT_TABLE_PRIVILEGES = "SELECT, INSERT"
# The app reads which migrations ran (checks at start-up); only the owner records them.
READ_ONLY_TABLES = {"django_migrations": "SELECT"}
SEQUENCE_PRIVILEGES = "USAGE, SELECT"


class NoSuchRole(Exception):
    """The app role named does not exist."""


class UnsafeRoles(Exception):
    """The roles are set up in a way that would let the app role get round the log's guards."""


@dataclass
class Grants:
    owner: str
    tables: int
    sequences: int


def _fetch(query: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def app_role_problems(role: str) -> list[str]:
    """Why `role` cannot be the app role, or cannot be granted to by the connected role."""
    found = _fetch("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
    if not found:
        raise NoSuchRole(f"There is no database role {role!r}; create it first (see docs/deployment.md).")
    [(me, schema)] = _fetch("SELECT current_user, current_schema()", [])
    if role == me:
        return [f"Run this as the owner role, not as the app role {role!r} itself."]
    problems = []
    if found[0][0]:
        problems.append(f"{role!r} is a superuser: it bypasses every privilege and can disable triggers.")
    owner = _fetch("SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = %s", [schema, EVENT_TABLE])
    if not owner:
        return [f"There is no table {EVENT_TABLE} in schema {schema}: run `manage.py migrate` first."]
    if owner[0][0] != me:
        problems.append(f"{EVENT_TABLE} is owned by {owner[0][0]!r}; run this as that role, the one that runs migrations.")
    elif _fetch("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, me])[0][0]:
        problems.append(f"{role!r} is a member of the owner role {me!r}, so it could alter or disable the triggers.")
    foreign = _fetch(
        """SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relowner <> %s::regrole
           ORDER BY 1""",
        [schema, me],
    )
    if foreign:
        names = ", ".join(f"{name} ({owner})" for name, owner in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        problems.append(f"Not owned by {me!r}: {names}. Hand them over first: REASSIGN OWNED BY <old owner> TO {me};")
    return problems


def app_role_grant(role: str) -> Grants:
    """
    Give `role` exactly the app's privileges on every table and sequence of the current
    schema (all owned by the connected role), in one transaction. Raises NoSuchRole, or
    UnsafeRoles without changing anything if the roles would let the app role get round
    the guards.
    """
    if problems := app_role_problems(role):
        raise UnsafeRoles(" ".join(problems))
    app = sql.Identifier(role)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema()")
        me, schema_name = cursor.fetchone()
        owner, schema = sql.Identifier(me), sql.Identifier(schema_name)
        relations = _fetch(
            """SELECT c.relname, c.relkind = 'S' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S') ORDER BY 1""",
            [schema_name],
        )
        statements = [sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, app)]
        for name, is_sequence in relations:
            privileges = (
                SEQUENCE_PRIVILEGES if is_sequence
                else EVENT_TABLE_PRIVILEGES if name == EVENT_TABLE
                else READ_ONLY_TABLES.get(name, TABLE_PRIVILEGES)
            )
            kind = sql.SQL("SEQUENCE" if is_sequence else "TABLE")
            relation = sql.Identifier(schema_name, name)
            # Revoke first, so that a privilege given by hand or by an older version goes.
            statements.append(sql.SQL("REVOKE ALL ON {} {} FROM {}").format(kind, relation, app))
            statements.append(sql.SQL("GRANT {} ON {} {} TO {}").format(sql.SQL(privileges), kind, relation, app))
        # Tables and sequences that later migrations create (as the owner) are usable at once.
        for privileges, kind in ((TABLE_PRIVILEGES, "TABLES"), (SEQUENCE_PRIVILEGES, "SEQUENCES")):
            statements.append(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON {} TO {}").format(
                    owner, schema, sql.SQL(privileges), sql.SQL(kind), app
                )
            )
        for statement in statements:
            cursor.execute(statement.as_string(cursor.connection))
        if _fetch(
            "SELECT has_table_privilege(%s, %s, 'UPDATE') OR has_table_privilege(%s, %s, 'DELETE')"
            " OR has_table_privilege(%s, %s, 'TRUNCATE')",
            [role, EVENT_TABLE] * 3,
        )[0][0]:
            # Granted to PUBLIC, or through another role: GRANT/REVOKE on the app role cannot fix that.
            raise UnsafeRoles(f"{role!r} can still change {EVENT_TABLE} through PUBLIC or another role it belongs to.")
    return Grants(owner=me, tables=sum(not s for _, s in relations), sequences=sum(s for _, s in relations))
