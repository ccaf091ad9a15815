"""
Prepared statements for a few hot, fixed queries (the recording service's, a live row's
signals), where Django's cursors would have PostgreSQL parse and plan them every time.
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections


@contextmanager
def prepared_statements() -> Iterator[Callable]:
    """
    A function that runs a statement, `execute(sql, params)`, and returns its cursor; the
    cursors close when the block ends.

    What it buys, on PostgreSQL: the statement goes straight to psycopg, bypassing Django's
    cursor wrapper, with its parameters bound on the server, and is prepared once per
    connection. PostgreSQL then parses and plans it once, not at every call (a live row's
    signals query takes about 0.25 ms to plan, 0.07 ms to run), and Python does not quote
    the parameters into the SQL text. Django's own cursors never prepare (they bind on the
    client, for the sake of transaction poolers; settings.py lets cursors that ask do so).

    What it costs: errors are psycopg's unless the caller is inside
    `connection.wrap_database_errors` (this wraps each call in it too), and the statements
    are not in `connection.queries` (DEBUG) nor seen by `connection.execute_wrapper`.
    Use it for a fixed set of statements only: each distinct text stays prepared on its
    connection. SQLite: Django's cursors.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of `connection` looks it up again
    db.ensure_connection()
    postgresql, pg, database_errors = db.vendor == "postgresql", db.connection, db.wrap_database_errors
    with ExitStack() as cursors:
        def execute(sql: str, params):
            if not postgresql:
                cursor = cursors.enter_context(db.cursor())
                cursor.execute(sql, params)
                return cursor
            with database_errors:
                return cursors.enter_context(psycopg.Cursor(pg)).execute(sql, params, prepare=True)
        yield execute
