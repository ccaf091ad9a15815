"""
The test database, as every test directory needs it (tests/ and bench/tests/): the
append-only triggers lifted around flushes, and the app role's grants. The people the
tests share are in tests/conftest.py.
"""

import os
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from activitylog import db_guards


@pytest.fixture(scope="session", autouse=True)
def _flushes_lift_append_only_triggers():
    """
    Transactional tests empty every table between tests (TRUNCATE on PostgreSQL, DELETE
    on SQLite), which the append-only triggers rightly refuse. Only here, in the test
    run, the flush drops the triggers and puts them back in the same transaction.
    """
    ops_class = type(connection.ops)
    original = ops_class.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        vendor = self.connection.vendor
        return original(self, [*db_guards.remove_sql(vendor), *sql_list, *db_guards.install_sql(vendor)])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ops_class, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """
    With DATABASE_APP_ROLE set on PostgreSQL (.ci/run sets it), the suite runs as the owner
    role, which created and migrated the test database, and the app role gets the grants
    of production (`grant_app_role`). Server and command child processes then connect as
    the app role (tests/subprocesses.py), as the real ones do.
    """
    role = os.environ.get("DATABASE_APP_ROLE")
    if role and connection.vendor == "postgresql":
        with django_db_blocker.unblock():
            call_command("grant_app_role", role, stdout=StringIO())
