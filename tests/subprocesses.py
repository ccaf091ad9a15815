"""Run manage.py in a real child process against the test database, as an operator would."""

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url(*, role: str = "") -> str:
    """
    The DATABASE_URL of the database this test run uses (its rows must be committed), as
    this run's own role or, on PostgreSQL, as `role` (its password, if any, from libpq's
    PGPASSWORD or ~/.pgpass).
    """
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    login = role or db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def app_database_url() -> str:
    """
    The test database as the app's own processes reach it (servers, cron commands): as the
    role named by DATABASE_APP_ROLE when it is set (PostgreSQL; .ci/run sets it, and
    conftest gives that role the production grants), else as this test run's role.
    """
    role = os.environ.get("DATABASE_APP_ROLE", "") if connection.vendor == "postgresql" else ""
    return test_database_url(role=role)


def manage_env() -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": app_database_url(), "DJANGO_SETTINGS_MODULE": "agencyhandy.settings_test"}
    # Explicit, not removed: manage.py would fill an unset DEBUG from a demo .env.
    env["DEBUG"] = "0"
    return env


def manage_command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def manage(*args: str, timeout: float = 60, env_extra: dict[str, str] | None = None,
           **kwargs) -> subprocess.CompletedProcess:
    """Run `manage.py ARGS` to completion and capture its output as text."""
    return subprocess.run(
        manage_command(*args), cwd=ROOT, env={**manage_env(), **(env_extra or {})}, capture_output=True,
        text=True, timeout=timeout, **kwargs,
    )
