"""
The benchmark dataset: agencies, staff, clients, portal users and millions of events
with valid hash chains, written with set-based SQL and COPY.

This is the one place where events bypass `activitylog.services.auth_event_record`: a
bulk loader of ten million rows cannot afford the service's row lock and round trips
per event. It links each client's chain with the same `activitylog.chain.event_hash`,
the run checks every chain afterwards with `verify_activity_log`, and the append-only
triggers stay in place (COPY is an INSERT). The recording service itself is measured
on clients of its own (see recording.py).

The dataset grows in stages (1 M, 5 M, 10 M events at full scale), so that measurements
can be repeated as the table grows. Each client's history is a fixed function of the
seed, spread over two to three years; a stage appends the next part of every history,
in time order, as production would have. A finished dataset of the same spec is reused
by the next run; an interrupted or different one is dropped and built again.
"""

import hashlib
import ipaddress
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from activitylog import chain
from activitylog.user_agent import browser_and_os
from bench.database import conninfo, drop_database, ensure_database
from bench.processes import spawn_pool
from bench.scale import Scale
from clients.management.commands.seed_demo import USER_AGENTS as DEMO_USER_AGENTS
from clients.models import Client, User

BUILDER_VERSION = 2  # bump when the generated data changes: old datasets are rebuilt
PASSWORD = "bench-password"
EVENT_TABLE = "activitylog_authevent"
COPY_COLUMNS = (
    "id", "chain_version", "agency_id", "client_id", "user_id", "email", "event_type", "occurred_at", "ip",
    "user_agent", "browser", "os", "session_ref", "reason", "seq", "prev_hash", "hash",
)
WORKERS = 2  # this machine's cores; PostgreSQL's COPY backends share them
WINDOWS_PER_STAGE = 40  # time slices per stage: rows reach the table roughly in time order
TIME_ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "UTC", "Australia/Sydney", "America/Los_Angeles"]
NAME_WORDS = (
    ["Northwind", "Blue Harbor", "Pixel", "Summit", "Greenleaf", "Old Mill", "Brightside", "Copper",
     "Silver Oak", "Redwood", "Lakeside", "Granite", "Maple", "Harbor", "Cedar", "Orchid", "Falcon",
     "Atlas", "Beacon", "Evergreen"],
    ["Traders", "Dental", "Studio", "Legal", "Organics", "Bakery", "Realty", "Logistics", "Fitness",
     "Consulting", "Motors", "Clinic", "Media", "Foods", "Labs"],
)
# The demo's browsers, and one more.
USER_AGENTS = [
    *DEMO_USER_AGENTS,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
]
WORK_CLIENTS = 16  # one per concurrent writer of measurement #4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400 * 1_000_000


@dataclass
class Probe:
    """A client the measurements look at, with its size in the current dataset."""

    client_id: int
    events: int


@dataclass
class Dataset:
    """What the measurements need to know about the dataset in the database."""

    scale: str
    total_events: int
    stages_done: int
    whale: Probe
    big: Probe
    small: Probe
    built_at: str
    growth: list[dict] = field(default_factory=list)

    @property
    def probes(self) -> dict[str, Probe]:
        return {"1 k": self.small, "100 k": self.big, "1 M": self.whale}


# Sizes and names ----------------------------------------------------------------------------


def client_sizes(scale: Scale) -> list[int]:
    """Events per client: the whale, the 100 k clients, the 1 k client, then a long tail."""
    rng = random.Random(scale.seed)
    fixed = [scale.whale_events] + [scale.big_events] * scale.big_clients + [scale.small_events]
    rest_count = scale.clients - len(fixed)
    rest_total = scale.total_events - sum(fixed)
    weights = [rng.lognormvariate(0, 1.0) for _ in range(rest_count)]
    total_weight = sum(weights)
    sizes = [int(w / total_weight * rest_total) for w in weights]
    for i in range(rest_total - sum(sizes)):
        sizes[i % rest_count] += 1
    return fixed + sizes


def events_at_stage(size: int, stage_total: int, scale: Scale) -> int:
    """How much of a client's history exists once the table holds `stage_total` events."""
    return size if stage_total >= scale.total_events else size * stage_total // scale.total_events


def _probe_indexes(scale: Scale) -> dict[str, int]:
    return {"whale": 0, "big": 1, "small": 1 + scale.big_clients}


def client_email(index: int) -> str:
    return f"client-{index:05d}@bench-clients.test"


def manager_email(agency_index: int) -> str:
    return f"manager-{agency_index:03d}@bench-staff.test"


ROOT_EMAIL = "root@bench-staff.test"


def work_email(name: str) -> str:
    return f"{name}@bench-work.test"


def writer_emails() -> list[str]:
    return [work_email(f"writer-{k:02d}") for k in range(WORK_CLIENTS)]


# The marker: which dataset is in this database --------------------------------------------------

MARKER_DDL = """
CREATE TABLE IF NOT EXISTS bench_dataset (
    id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    spec jsonb NOT NULL,
    stages_done int NOT NULL DEFAULT 0,
    building boolean NOT NULL DEFAULT false,
    t_end timestamptz NOT NULL,
    growth jsonb NOT NULL DEFAULT '[]',
    built_at timestamptz
)"""


def _spec(scale: Scale) -> dict:
    # The chain key is part of the spec: hashes made with another key would not verify.
    key_id = hashlib.sha256(b"bench-key-id:" + chain.chain_key()).hexdigest()[:16]
    return {"builder": BUILDER_VERSION, "scale": asdict(scale) | {"seed": scale.seed}, "chain_key": key_id}


def _marker() -> dict | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_dataset') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT spec, stages_done, building, t_end, growth, built_at FROM bench_dataset")
        row = cursor.fetchone()
    if row is None:
        return None
    spec, stages_done, building, t_end, growth, built_at = row
    # Django's cursor hands jsonb over as text (JSONField decodes it itself).
    spec, growth = (json.loads(v) if isinstance(v, str) else v for v in (spec, growth))
    return {"spec": spec, "stages_done": stages_done, "building": building, "t_end": t_end,
            "growth": growth, "built_at": built_at}


def _set_marker(**values) -> None:
    assignments = ", ".join(f"{name} = %s" for name in values)
    params = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in values.values()]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE bench_dataset SET {assignments}", params)


def _needs_reset(marker: dict | None, spec: dict) -> str:
    if marker is None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {EVENT_TABLE})")
            if cursor.fetchone()[0]:
                return "the database holds events that this builder did not write"
        return ""
    if marker["spec"] != spec:
        return "it was built with another size, seed, builder version or chain key"
    if marker["building"]:
        return "an earlier build was interrupted"
    return ""


# Building ----------------------------------------------------------------------------------


def build(scale: Scale, *, log: Callable[[str], None], on_stage: Callable[[Dataset], dict] | None = None,
          rebuild: bool = False) -> Dataset:
    """
    Make sure the database holds the dataset of `scale`, building or finishing it.

    `on_stage` runs after each newly built stage (the growth measurements) and returns a
    dict kept with the dataset, so a later run that reuses it can still report them.
    """
    ensure_database()
    spec = _spec(scale)
    reason = "--rebuild was given" if rebuild else _needs_reset(_marker(), spec)
    if reason:
        log(f"Dropping the benchmark database: {reason}.")
        drop_database()
        ensure_database()
    marker = _marker()
    if marker is None:
        t_end = timezone.now().replace(microsecond=0) - timedelta(hours=1)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(MARKER_DDL)
                cursor.execute("INSERT INTO bench_dataset (spec, t_end) VALUES (%s, %s)", [json.dumps(spec), t_end])
            create_people(scale)
        marker = _marker()
        log(f"Created {scale.agencies} agencies, {scale.clients + WORK_CLIENTS + 2} clients and their users.")

    sizes = client_sizes(scale)
    for stage, stage_total in enumerate(scale.growth_stages, start=1):
        if stage <= marker["stages_done"]:
            continue
        _set_marker(building=True)
        started = time.monotonic()
        loaded = load_stage(scale, sizes, stage_total, marker["t_end"], log)
        _set_marker(building=False, stages_done=stage, built_at=timezone.now())
        log(f"Stage {stage}: {loaded:,} events loaded in {time.monotonic() - started:.0f} s "
            f"({stage_total:,} in the dataset).")
        _vacuum(log)
        marker = _marker()
        if on_stage is not None:
            growth = [*marker["growth"], on_stage(_dataset(scale, sizes, marker))]
            _set_marker(growth=growth)
            marker = _marker()
    return _dataset(scale, sizes, marker)


def _dataset(scale: Scale, sizes: list[int], marker: dict) -> Dataset:
    stage_total = scale.growth_stages[marker["stages_done"] - 1]
    ids = _client_ids(scale.clients)
    probes = {
        name: Probe(ids[index], events_at_stage(sizes[index], stage_total, scale))
        for name, index in _probe_indexes(scale).items()
    }
    total = sum(events_at_stage(s, stage_total, scale) for s in sizes)
    built_at = marker["built_at"].isoformat(timespec="minutes") if marker["built_at"] else ""
    return Dataset(scale=scale.name, total_events=total, stages_done=marker["stages_done"],
                   built_at=built_at, growth=marker["growth"], **probes)


def _client_ids(count: int) -> list[int]:
    by_email = dict(
        Client.objects.filter(email__endswith="@bench-clients.test").values_list("email", "pk")
    )
    return [by_email[client_email(i)] for i in range(count)]


def create_people(scale: Scale) -> None:
    """Agencies, clients, portal users and staff, each with one INSERT ... SELECT."""
    password = make_password(PASSWORD)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO clients_agency (name, slug, time_zone)
               SELECT format('Bench Agency %%s', g), format('bench-%%s', lpad(g::text, 3, '0')),
                      (%(zones)s::text[])[1 + g %% cardinality(%(zones)s::text[])]
               FROM generate_series(0, %(n)s - 1) g ORDER BY g""",
            {"zones": TIME_ZONES, "n": scale.agencies},
        )
        cursor.execute("SELECT array_agg(id ORDER BY slug) FROM clients_agency WHERE slug LIKE 'bench-%'")
        agencies = cursor.fetchone()[0]
        cursor.execute(
            """INSERT INTO clients_client (agency_id, name, email, company_name, status, is_archived,
                                           is_premium, created_at)
               SELECT (%(agencies)s::bigint[])[1 + g %% %(a)s],
                      format('%%s %%s %%s', (%(w1)s::text[])[1 + g %% cardinality(%(w1)s::text[])],
                             (%(w2)s::text[])[1 + (g / 7) %% cardinality(%(w2)s::text[])], g),
                      format('client-%%s@bench-clients.test', lpad(g::text, 5, '0')),
                      format('Bench Company %%s', g), 'active', false, g %% 10 = 0, %(now)s
               FROM generate_series(0, %(n)s - 1) g ORDER BY g""",
            {"agencies": agencies, "a": len(agencies), "w1": NAME_WORDS[0], "w2": NAME_WORDS[1],
             "n": scale.clients, "now": now},
        )
        work = [*(e.split("@")[0] for e in writer_emails()), "login", "live"]
        cursor.execute(
            """INSERT INTO clients_client (agency_id, name, email, company_name, status, is_archived,
                                           is_premium, created_at)
               SELECT %(agency)s, format('Bench %%s', w), format('%%s@bench-work.test', w), 'Bench work client',
                      'active', false, false, %(now)s
               FROM unnest(%(work)s::text[]) WITH ORDINALITY AS t(w, k) ORDER BY k""",
            {"agency": agencies[0], "work": work, "now": now},
        )
        # Portal users: one to three per client; each work client's user has the client's email.
        cursor.execute(
            """INSERT INTO clients_user (password, is_superuser, email, full_name, is_active, is_staff,
                                         date_joined, client_id)
               SELECT %(pw)s, false, replace(c.email, 'client-', format('user%%s-', u)),
                      format('Portal User %%s', u), true, false, %(now)s, c.id
               FROM clients_client c
               CROSS JOIN LATERAL generate_series(1, 1 + c.id::int %% 3) u
               WHERE c.email LIKE '%%@bench-clients.test'
               UNION ALL
               SELECT %(pw)s, false, c.email, c.name, true, false, %(now)s, c.id
               FROM clients_client c WHERE c.email LIKE '%%@bench-work.test'""",
            {"pw": password, "now": now},
        )
        cursor.execute(
            """INSERT INTO clients_user (password, is_superuser, email, full_name, is_active, is_staff, date_joined)
               SELECT %(pw)s, false, format('manager-%%s@bench-staff.test', substr(slug, 7)), 'Bench Manager',
                      true, false, %(now)s
               FROM clients_agency WHERE slug LIKE 'bench-%%'
               UNION ALL
               SELECT %(pw)s, true, %(root)s, 'Bench Root', true, true, %(now)s""",
            {"pw": password, "now": now, "root": ROOT_EMAIL},
        )
        cursor.execute(
            """INSERT INTO clients_staffmembership (role, agency_id, user_id)
               SELECT 'manager', a.id, u.id FROM clients_agency a
               JOIN clients_user u ON u.email = format('manager-%%s@bench-staff.test', substr(a.slug, 7))
               WHERE a.slug LIKE 'bench-%%'""",
            [],  # with parameters, so that %% means % as in the statements above
        )


# One stage of events ---------------------------------------------------------------------------


@dataclass
class ChainPlan:
    """The part of one client's history that a stage appends."""

    client_id: int
    agency_id: int
    users: list[tuple[int, str]]
    ips: list[str]
    total: int  # events in the client's whole history
    first_seq: int
    last_seq: int
    prev_hash: str
    start_us: int
    span_us: int
    first_id: int = 0  # the id of the event at first_seq; the plan's ids follow its seqs

    def base_us(self, seq: int) -> float:
        return self.start_us + (seq - 0.5) * self.span_us / self.total


def _plans(scale: Scale, sizes: list[int], stage_total: int, t_end: datetime) -> list[ChainPlan]:
    ids = _client_ids(scale.clients)
    clients = dict(Client.objects.filter(pk__in=ids).values_list("pk", "agency_id"))
    users: dict[int, list[tuple[int, str]]] = {}
    for user_id, client_id, email in (
        User.objects.filter(client_id__in=ids).order_by("pk").values_list("pk", "client_id", "email")
    ):
        users.setdefault(client_id, []).append((user_id, email))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT DISTINCT ON (client_id) client_id, seq, hash FROM {EVENT_TABLE}
                WHERE client_id = ANY(%s) ORDER BY client_id, seq DESC""",
            [ids],
        )
        heads = {client_id: (seq, digest) for client_id, seq, digest in cursor.fetchall()}
    end_us = (t_end - _EPOCH) // timedelta(microseconds=1)
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
            client_id=client_id, agency_id=clients[client_id], users=users[client_id], ips=ips,
            total=size, first_seq=done + 1, last_seq=last, prev_hash=prev_hash,
            start_us=end_us - span_us, span_us=span_us,
        ))
    return plans


def load_stage(scale: Scale, sizes: list[int], stage_total: int, t_end: datetime, log) -> int:
    plans = _plans(scale, sizes, stage_total, t_end)
    count = sum(p.last_seq - p.first_seq + 1 for p in plans)
    if not plans:
        return 0
    t_lo = min(p.base_us(p.first_seq) for p in plans)
    t_hi = max(p.base_us(p.last_seq) for p in plans) + 1
    shards: list[list[ChainPlan]] = [[] for _ in range(WORKERS)]
    loads = [0] * WORKERS
    for plan in sorted(plans, key=lambda p: p.last_seq - p.first_seq, reverse=True):
        lightest = loads.index(min(loads))
        shards[lightest].append(plan)
        loads[lightest] += plan.last_seq - plan.first_seq + 1

    info = conninfo()
    with psycopg.connect(info, autocommit=True) as conn:
        _allocate_ids(conn, plans, count)
        structures = _drop_secondary_structures(conn)
        log(f"  dropped {len(structures)} indexes and constraints for the bulk load")
        ua_table = [(ua, *browser_and_os(ua)) for ua in USER_AGENTS]
        key = chain.chain_key()
        started = time.monotonic()
        with spawn_pool(WORKERS) as pool:
            futures = [
                pool.submit(_copy_events, info, shard, key, ua_table, t_lo, t_hi, scale.seed)
                for shard in shards if shard
            ]
            written = sum(f.result() for f in futures)
        assert written == count, (written, count)
        log(f"  hashed and copied {count:,} events in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        _restore_secondary_structures(conn, structures)
        log(f"  rebuilt indexes and constraints in {time.monotonic() - started:.0f} s")
    return count


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


def _vacuum(log) -> None:
    # As autovacuum would do soon after such a load; done now, so that it does not start
    # in the middle of a measurement, and index-only scans see an up-to-date visibility map.
    started = time.monotonic()
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {EVENT_TABLE}")
        conn.execute("ANALYZE clients_client; ANALYZE clients_user")
    log(f"  vacuumed and analysed in {time.monotonic() - started:.0f} s")


def _copy_events(info: str, plans: list[ChainPlan], key: bytes, ua_table, t_lo: float, t_hi: float,
                 seed: int) -> int:
    """In a worker process: generate, hash and COPY the plans' events, slice by time slice."""
    states = [_ChainState(plan, seed) for plan in plans]
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


class _ChainState:
    """One client's chain while a stage is generated: the next seq, the last hash, a session."""

    def __init__(self, plan: ChainPlan, seed: int) -> None:
        self.plan = plan
        self.seq = plan.first_seq
        self.prev_hash = plan.prev_hash
        self.rng = random.Random(f"{seed}:events:{plan.client_id}:{plan.first_seq}")
        self.gap = plan.span_us / plan.total
        self.pending: tuple[int, str, str, int, str] | None = None  # the session waiting for its logout

    def generate_until(self, edge: float, out: list, key: bytes, ua_table) -> None:
        plan, rng = self.plan, self.rng
        while self.seq <= plan.last_seq and plan.base_us(self.seq) < edge:
            seq = self.seq
            # Jitter stays under half the gap, so a client's events stay in time order.
            micros = int(plan.start_us + (seq - 0.5 + (rng.random() - 0.5) * 0.8) * self.gap)
            reason = ""
            if self.pending is not None:
                event_type = "logout"
                user_id, email, ip, ua_index, session_ref = self.pending
                self.pending = None
            else:
                user_id, email = rng.choice(plan.users)
                ip = rng.choice(plan.ips)
                ua_index = rng.randrange(len(ua_table))
                if rng.random() < 0.1:
                    event_type, session_ref = "login_failed", ""
                    reason = "bad_password" if rng.random() < 0.9 else "account_inactive"
                else:
                    event_type = "login"
                    session_ref = hashlib.sha256(f"bench:{plan.client_id}:{seq}".encode()).hexdigest()
                    if rng.random() < 0.8:  # the rest simply closed the browser
                        self.pending = (user_id, email, ip, ua_index, session_ref)
            user_agent, browser, os_name = ua_table[ua_index]
            occurred_at = _EPOCH + timedelta(microseconds=micros)
            event_id = plan.first_id + seq - plan.first_seq
            values = {
                "id": event_id, "chain_version": chain.CHAIN_VERSION,
                "seq": seq, "prev_hash": self.prev_hash, "agency_id": plan.agency_id,
                "client_id": plan.client_id, "user_id": user_id, "email": email,
                "event_type": event_type, "occurred_at": occurred_at, "ip": ip,
                "user_agent": user_agent, "browser": browser, "os": os_name,
                "session_ref": session_ref, "reason": reason,
            }
            digest = chain.event_hash(values, key)
            out.append((micros, (
                f"{event_id}\t{chain.CHAIN_VERSION}\t{plan.agency_id}\t{plan.client_id}\t{user_id}\t{email}\t"
                f"{event_type}\t{occurred_at.isoformat()}\t{ip}\t{user_agent}\t{browser}\t{os_name}\t"
                f"{session_ref}\t{reason}\t{seq}\t{self.prev_hash}\t{digest}\n"
            )))
            self.prev_hash = digest
            self.seq += 1
