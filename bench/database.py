"""The benchmark's own PostgreSQL database: create it when missing, reset it, describe it."""

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from psycopg import sql


class BenchmarkSetupError(Exception):
    """The benchmark cannot run here; the message says what to fix."""


def conninfo(database: str | None = None) -> str:
    """A libpq connection string for the benchmark database (or another on its server)."""
    s = settings.DATABASES["default"]
    parts = {
        "host": s.get("HOST") or "127.0.0.1",
        "port": s.get("PORT") or 5432,
        "user": s.get("USER") or "postgres",
        "dbname": database or s["NAME"],
    }
    if s.get("PASSWORD"):
        parts["password"] = s["PASSWORD"]
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})


def _maintenance() -> psycopg.Connection:
    try:
        return psycopg.connect(conninfo("postgres"), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise BenchmarkSetupError(
            f"PostgreSQL is not reachable ({exc}). Start it, or point BENCH_DATABASE_URL at one."
        ) from exc


def ensure_database() -> bool:
    """Create the benchmark database if it is missing and migrate it. True if it was created."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise BenchmarkSetupError("The benchmark needs PostgreSQL: set BENCH_DATABASE_URL=postgres://...")
    name = settings.DATABASES["default"]["NAME"]
    with _maintenance() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    call_command("migrate", interactive=False, verbosity=0)
    return not exists


def close_django_connections() -> None:
    for conn in connections.all():
        conn.close()
        close_pool = getattr(conn, "close_pool", None)
        if close_pool:
            close_pool()


def drop_database() -> None:
    """Drop the benchmark database: the activity log refuses DELETE and TRUNCATE, rightly."""
    close_django_connections()
    name = settings.DATABASES["default"]["NAME"]
    with _maintenance() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def server_versions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
        cursor.execute("SELECT current_setting('shared_buffers'), current_setting('work_mem')")
        shared_buffers, work_mem = cursor.fetchone()
    return {"postgres": postgres, "shared_buffers": shared_buffers, "work_mem": work_mem}

