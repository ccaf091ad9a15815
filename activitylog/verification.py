"""
Recompute the hash chains of the whole log, fast: one pass over the table in its
physical order (no sort of ten million rows), the rows read as plain tuples, and on
PostgreSQL two processes, each taking half of the clients.
"""

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context

import django
from django.db import connection, connections

from activitylog.chain import WALKED_COLUMNS, ChainWalker

FETCH_ROWS = 20_000
# Below this many events, starting worker processes costs more than it saves.
PARALLEL_FROM = 500_000


@dataclass
class ChainReport:
    checked: int = 0
    breaks: dict[int, str] = field(default_factory=dict)
    heads: dict[int, tuple[int, str]] = field(default_factory=dict)
    hashes_at: dict[int, str] = field(default_factory=dict)

    def merge(self, other: "ChainReport") -> "ChainReport":
        self.checked += other.checked
        self.breaks.update(other.breaks)
        self.heads.update(other.heads)
        self.hashes_at.update(other.hashes_at)
        return self


def _columns() -> str:
    if connection.vendor != "postgresql":
        return ", ".join(WALKED_COLUMNS)
    # Text straight from PostgreSQL, the spelling chain.format_timestamp gives: no
    # datetime objects for ten million rows. host() is the address as Django reads it.
    formatted = {
        "occurred_at": """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
        "ip": "host(ip)",
    }
    return ", ".join(formatted.get(name, name) for name in WALKED_COLUMNS)


def _stream(walker: ChainWalker, sql: str, params: list) -> None:
    # A server-side cursor on PostgreSQL: rows stream in, memory stays flat.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            for row in rows:
                walker.feed(row)


def _walk(part: int, parts: int, client_ids: list[int] | None, checkpoints: dict[int, int]) -> ChainReport:
    """Walk the chains of the clients with client_id % parts == part."""
    conditions, params = [], []
    if parts > 1:
        conditions.append("client_id %% %s = %s")
        params += [parts, part]
    if client_ids:
        conditions.append(f"client_id IN ({', '.join(['%s'] * len(client_ids))})")
        params += client_ids
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    walker = ChainWalker(checkpoints=checkpoints)
    _stream(walker, f"SELECT {_columns()} FROM activitylog_authevent{where}", params)
    walker.finish()
    report = ChainReport(walker.checked, walker.breaks, walker.heads, walker.hashes_at)
    for client_id in walker.deferred:
        # Stored far out of chain order: read this one chain through its (client, seq) index.
        ordered = ChainWalker(checkpoints=checkpoints, set_aside=False)
        _stream(ordered, f"SELECT {_columns()} FROM activitylog_authevent WHERE client_id = %s ORDER BY seq", [client_id])
        ordered.finish()
        report.breaks.update(ordered.breaks)
        report.hashes_at.update(ordered.hashes_at)
    return report


def _walk_in_worker(database_name: str, *args) -> ChainReport:
    django.setup()
    # The very database the parent reads (under the test runner, the test database).
    connections["default"].settings_dict["NAME"] = database_name
    try:
        return _walk(*args)
    finally:
        connections.close_all()


def _estimated_rows() -> int:
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'activitylog_authevent'")
        row = cursor.fetchone()
    return max(row[0], 0) if row else 0


def chains_verify(*, client_ids: list[int] | None = None, checkpoints: dict[int, int] | None = None,
                  workers: int | None = None) -> ChainReport:
    """Check every chain (or those of `client_ids`); see ChainWalker for what is checked."""
    checkpoints = checkpoints or {}
    if workers is None:
        workers = 2 if not client_ids and _estimated_rows() >= PARALLEL_FROM else 1
    workers = max(1, min(workers, os.cpu_count() or 1)) if connection.vendor == "postgresql" else 1
    if workers == 1:
        return _walk(0, 1, client_ids, checkpoints)
    database_name = connection.settings_dict["NAME"]
    connections.close_all()  # fresh processes ("spawn"): the parent's pool has threads
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_walk_in_worker, database_name, part, workers, client_ids, checkpoints)
            for part in range(workers)
        ]
        report = ChainReport()
        for future in futures:
            report.merge(future.result())
    return report
