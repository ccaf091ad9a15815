"""
One stage of the dataset's events into PostgreSQL, fast: each client's next part of its
history (events.py) is hashed in worker processes and written with COPY in time slices,
so rows and ids reach the table roughly in time order, as in production. The event
table's secondary indexes and constraints are dropped for the load and rebuilt from
their own definitions afterwards.

This is the one place where the benchmark's events bypass
`activitylog.services.auth_event_record`: a bulk loader of ten million rows cannot
afford the service's row lock and round trips per event. It links each client's chain
with the same `activitylog.chain.event_hash`, the run checks every chain afterwards with
`verify_activity_log`, and the append-only triggers stay in place (COPY is an INSERT).
The recording service itself is measured on clients of its own (see recording.py).
"""

import ipaddress
import random
import time
from datetime import datetime, timedelta

import psycopg
from django.db import connection

from activitylog import chain
from agencyhandy.lib.user_agent import browser_and_os
from bench.database import conninfo
from bench.dataset import USER_AGENTS, client_ids, events_at_stage
from bench.events import COPY_COLUMNS, EPOCH, ChainPlan, ChainState
from bench.processes import spawn_pool
from bench.scale import Scale
from clients.models import Client, User

EVENT_TABLE = "activitylog_authevent"
WORKERS = 2  # this machine's cores; PostgreSQL's COPY backends share them
WINDOWS_PER_STAGE = 40  # time slices per stage: rows reach the table roughly in time order
_DAY_US = 86_400 * 1_000_000


def load_stage(scale: Scale, sizes: list[int], stage_total: int, t_end: datetime, log) -> int:
    """Append every client's events up to `stage_total` in the whole table; return how many."""
    plans = _plans(scale, sizes, stage_total, t_end)
    if not plans:
        return 0
    count = sum(p.last_seq - p.first_seq + 1 for p in plans)
    info = conninfo()
    with psycopg.connect(info, autocommit=True) as conn:
        _allocate_ids(conn, plans, count)
        structures = _drop_secondary_structures(conn)
        log(f"  dropped {len(structures)} indexes and constraints for the bulk load")
        started = time.monotonic()
        written = _copy_in_workers(info, plans, scale.seed)
        assert written == count, (written, count)
        log(f"  hashed and copied {count:,} events in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        _restore_secondary_structures(conn, structures)
        log(f"  rebuilt indexes and constraints in {time.monotonic() - started:.0f} s")
    return count


def vacuum(log) -> None:
    """As autovacuum would do soon after such a load."""
    # Done now, so that it does not start in the middle of a measurement, and index-only
    # scans see an up-to-date visibility map.
    started = time.monotonic()
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {EVENT_TABLE}")
        conn.execute("ANALYZE clients_client; ANALYZE clients_user")
    log(f"  vacuumed and analysed in {time.monotonic() - started:.0f} s")


def _plans(scale: Scale, sizes: list[int], stage_total: int, t_end: datetime) -> list[ChainPlan]:
    ids = client_ids(scale.clients)
    agencies = dict(Client.objects.filter(pk__in=ids).values_list("pk", "agency_id"))
    users: dict[int, list[tuple[int, str]]] = {}
    for user_id, client_id, email in (
        User.objects.filter(client_id__in=ids).order_by("pk").values_list("pk", "client_id", "email")
    ):
        users.setdefault(client_id, []).append((user_id, email))
    heads = _chain_heads(ids)
    end_us = (t_end - EPOCH) // timedelta(microseconds=1)
    plans = []
    for index, (client_id, size) in enumerate(zip(ids, sizes, strict=True)):
        last = events_at_stage(size, stage_total, scale)
        done, prev_hash = heads.get(client_id, (0, chain.GENESIS))
        if last <= done:
            continue
        rng = random.Random(f"{scale.seed}:client:{index}")
        span_us = rng.randint(730, 1095) * _DAY_US
        ips = [f"203.0.113.{rng.randint(2, 254)}", f"198.51.100.{rng.randint(2, 254)}",
               ipaddress.ip_address(f"2001:db8::{rng.randint(1, 0xFFFF):x}").compressed]
        plans.append(ChainPlan(
            client_id=client_id, agency_id=agencies[client_id], users=users[client_id], ips=ips,
            total=size, first_seq=done + 1, last_seq=last, prev_hash=prev_hash,
            start_us=end_us - span_us, span_us=span_us,
        ))
    return plans


def _chain_heads(ids: list[int]) -> dict[int, tuple[int, str]]:
    """The last seq and hash of each client's chain so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT DISTINCT ON (client_id) client_id, seq, hash FROM {EVENT_TABLE}
                WHERE client_id = ANY(%s) ORDER BY client_id, seq DESC""",
            [ids],
        )
        return {client_id: (seq, digest) for client_id, seq, digest in cursor.fetchall()}


def _allocate_ids(conn: psycopg.Connection, plans: list[ChainPlan], count: int) -> None:
    """
    Give each plan a run of ids from the table's sequence, before its events are hashed
    (the chain covers ids), so a client's ids grow along its chain as the recording
    service's do. One block for the whole stage: the builder is the database's only
    writer while it loads, so nothing takes an id between nextval and setval.
    """
    [(last,)] = conn.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
        [EVENT_TABLE, EVENT_TABLE, count],
    ).fetchall()
    next_id = last - count + 1
    for plan in plans:
        plan.first_id = next_id
        next_id += plan.last_seq - plan.first_seq + 1


def _drop_secondary_structures(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """Drop the event table's indexes and constraints (not the primary key, not the triggers)."""
    table = EVENT_TABLE
    constraints = conn.execute(
        """SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname""",
        [table],
    ).fetchall()
    indexes = conn.execute(
        """SELECT 'index', indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
           WHERE indrelid = %s::regclass AND NOT indisprimary
             AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = %s::regclass)
           ORDER BY 2""",
        [table, table],
    ).fetchall()
    structures = [*constraints, *indexes]
    with conn.transaction():
        for kind, name, _ in structures:
            if kind == "constraint":
                conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            else:
                conn.execute(f'DROP INDEX "{name}"')
    return structures


def _restore_secondary_structures(conn: psycopg.Connection, structures: list[tuple[str, str, str]]) -> None:
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    with conn.transaction():
        # Indexes first, so that the foreign keys validate against a table that is ready.
        for kind, name, definition in sorted(structures, key=lambda s: s[0] != "index"):
            if kind == "index":
                conn.execute(definition)
            else:
                conn.execute(f'ALTER TABLE {EVENT_TABLE} ADD CONSTRAINT "{name}" {definition}')


def _copy_in_workers(info: str, plans: list[ChainPlan], seed: int) -> int:
    """Hash and COPY the plans' events in WORKERS processes, the largest plans spread first."""
    shards: list[list[ChainPlan]] = [[] for _ in range(WORKERS)]
    loads = [0] * WORKERS
    for plan in sorted(plans, key=lambda p: p.last_seq - p.first_seq, reverse=True):
        lightest = loads.index(min(loads))
        shards[lightest].append(plan)
        loads[lightest] += plan.last_seq - plan.first_seq + 1
    t_lo = min(p.base_us(p.first_seq) for p in plans)
    t_hi = max(p.base_us(p.last_seq) for p in plans) + 1
    ua_table = [(ua, *browser_and_os(ua)) for ua in USER_AGENTS]
    key = chain.chain_key()
    with spawn_pool(WORKERS) as pool:
        futures = [
            pool.submit(_copy_events, info, shard, key, ua_table, t_lo, t_hi, seed) for shard in shards if shard
        ]
        return sum(f.result() for f in futures)


def _copy_events(info: str, plans: list[ChainPlan], key: bytes, ua_table, t_lo: float, t_hi: float,
                 seed: int) -> int:
    """In a worker process: generate, hash and COPY the plans' events, slice by time slice."""
    states = [ChainState(plan, seed) for plan in plans]
    written = 0
    columns = ", ".join(COPY_COLUMNS)
    with psycopg.connect(info) as conn:
        conn.execute("SET synchronous_commit = off")
        with conn.cursor().copy(f"COPY {EVENT_TABLE} ({columns}) FROM STDIN") as copy:
            for w in range(1, WINDOWS_PER_STAGE + 1):
                edge = t_lo + (t_hi - t_lo) * w / WINDOWS_PER_STAGE
                batch: list[tuple[int, str]] = []
                for state in states:
                    state.generate_until(edge, batch, key, ua_table)
                batch.sort()
                copy.write("".join(line for _, line in batch))
                written += len(batch)
    return written
