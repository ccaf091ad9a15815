"""
Measurements #4 and #5: writing events through the recording service.

#4 runs `auth_event_record` (row lock, chain link, insert, commit, after-commit push)
flat out in 1, 4 and 16 writer processes, on clients of their own or all on one client,
then checks that every chain is intact. #5 times the portal login POST with and
without the activity log's receivers connected.
"""

import hashlib
import io
import os
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import psycopg
import psycopg.conninfo
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient

from activitylog import chain, live, services
from activitylog.models import AuthEvent
from activitylog.services import auth_event_record
from agencyhandy.lib.user_agent import MAX_USER_AGENT_LENGTH, browser_and_os
from bench.dataset import PASSWORD, USER_AGENTS, work_email, writer_emails
from bench.processes import CONTEXT, start_process
from bench.scale import Scale
from bench.stats import Samples, time_alternating
from clients.models import User


@dataclass(frozen=True)
class Throughput:
    writers: int
    same_client: bool
    events: int
    seconds: float
    chains_intact: bool
    writer_cpu_ms: float = 0.0  # per event: the writer processes, all their threads
    backend_cpu_ms: float = 0.0  # per event: their PostgreSQL backends

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


def writer_main(email: str, seconds: float, barrier, results) -> None:
    """One writer process: record logins as fast as the service allows for `seconds`."""
    os.environ["PGAPPNAME"] = _app_name()  # names every connection it opens, the render thread's too
    user = User.objects.get(email=email)
    salt = os.urandom(8).hex()

    def record(n: int) -> None:
        auth_event_record(
            user=user, event_type="login", ip="203.0.113.7", user_agent=USER_AGENTS[n % len(USER_AGENTS)],
            session_ref=hashlib.sha256(f"{salt}:{n}".encode()).hexdigest(),
        )

    record(-1)  # connect, warm the caches; not counted
    live.wait_for_publishes()  # the render thread has its connection too
    backends = _backend_pids()
    barrier.wait()
    cpu = _cpu_seconds(backends)
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        record(count)
        count += 1
    live.wait_for_publishes()  # their pushes are part of the work
    results.put((count, *(after - before for after, before in zip(_cpu_seconds(backends), cpu, strict=True))))


def _app_name() -> str:
    return f"bench-writer-{os.getpid()}"


def _backend_pids() -> list[int]:
    """The PostgreSQL backends of this process's connections (PostgreSQL runs on this machine)."""
    with psycopg.connect(_conninfo(), autocommit=True) as pg:
        rows = pg.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [_app_name()])
        return [pid for (pid,) in rows]


def _cpu_seconds(backends: list[int]) -> tuple[float, float]:
    """(this process's CPU, all its threads; its backends' CPU), in seconds, from /proc."""
    return time.process_time(), sum(_proc_cpu_seconds(pid) for pid in backends)


def _proc_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # the backend ended; its CPU is lost to the count
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _conninfo() -> str:
    db = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
        host=db["HOST"] or None, port=str(db["PORT"]) if db["PORT"] else None,
    )


def floor_writer_main(email: str, seconds: float, barrier, results) -> None:
    """
    One writer of the floor: what auth_event_record sends PostgreSQL, and nothing else.

    The service's own statements (services._LOCK_SQL, _HEAD_SQL, _INSERT_SQL), prepared,
    in the same two pipelines (BEGIN, lock, head; then insert, COMMIT), on one plain
    psycopg connection: no Django, no pool, no push. The rows are real events, linked and
    hashed like the service's, so the chains still verify.
    """
    user = User.objects.get(email=email)
    devices = [(agent[:MAX_USER_AGENT_LENGTH], *browser_and_os(agent)) for agent in USER_AGENTS]
    salt, key = os.urandom(8).hex(), chain.chain_key()
    with psycopg.connect(_conninfo(), autocommit=True, prepare_threshold=5) as pg:
        [backend] = pg.execute("SELECT pg_backend_pid()").fetchone()
        record = partial(_floor_record, pg, user, devices, salt, key)
        record(-1)
        barrier.wait()
        cpu = _cpu_seconds([backend])
        count, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            record(count)
            count += 1
        results.put((count, *(after - before for after, before in zip(_cpu_seconds([backend]), cpu, strict=True))))


def _floor_record(pg: psycopg.Connection, user: User, devices: list, salt: str, key: bytes, n: int) -> None:
    user_agent, browser, os_name = devices[n % len(devices)]
    with pg.pipeline(), ExitStack() as cursors:
        def execute(sql, params):
            return cursors.enter_context(psycopg.Cursor(pg)).execute(sql, params, prepare=True)
        execute("BEGIN", None)
        lock = execute(services._LOCK_SQL[True], [user.client_id])
        head = execute(services._HEAD_SQL[True], [user.client_id])
        agency_id, _ = lock.fetchone()
        next_id, last_seq, last_hash = head.fetchone()
        event = {
            "id": next_id, "chain_version": chain.CHAIN_VERSION, "seq": last_seq + 1 if last_seq else 1,
            "prev_hash": last_hash if last_seq else chain.GENESIS, "agency_id": agency_id,
            "client_id": user.client_id, "user_id": user.pk, "email": user.email, "event_type": "login",
            "occurred_at": datetime.now(UTC), "ip": "203.0.113.7", "user_agent": user_agent,
            "browser": browser, "os": os_name, "reason": "",
            "session_ref": hashlib.sha256(f"{salt}:floor:{n}".encode()).hexdigest(),
        }
        event["hash"] = chain.event_hash(event, key)
        execute(services._INSERT_SQL, [event[field.attname] for field in services._INSERTED])
        execute("COMMIT", None)


def record_events(count: int) -> None:
    """`count` events through the recording service, spread over the work clients (#8's new events)."""
    users = list(User.objects.filter(email__in=writer_emails()))
    salt = os.urandom(8).hex()
    for n in range(count):
        auth_event_record(
            user=users[n % len(users)], event_type="login", ip="203.0.113.8",
            user_agent=USER_AGENTS[n % len(USER_AGENTS)],
            session_ref=hashlib.sha256(f"{salt}:new:{n}".encode()).hexdigest(),
        )


def throughput(*, writers: int, same_client: bool, seconds: float, floor: bool = False) -> Throughput:
    """`writers` processes through the recording service (or, with `floor`, its bare SQL) for `seconds`."""
    emails = writer_emails()
    targets = [emails[0]] * writers if same_client else [emails[i % len(emails)] for i in range(writers)]
    client_ids = set(User.objects.filter(email__in=targets).values_list("client_id", flat=True))
    before = AuthEvent.objects.filter(client_id__in=client_ids).count()
    barrier, results = CONTEXT.Barrier(writers + 1), CONTEXT.Queue()
    target = f"{__name__}.{'floor_writer_main' if floor else 'writer_main'}"
    processes = [start_process(target, email, seconds, barrier, results) for email in targets]
    barrier.wait(timeout=90)  # broken at once if a writer dies first
    started = time.monotonic()
    events, writer_cpu, backend_cpu = (sum(column) for column in zip(
        *(results.get(timeout=seconds + 60) for _ in processes), strict=True))
    elapsed = time.monotonic() - started
    for process in processes:
        process.join(timeout=30)
        if process.exitcode != 0:
            raise RuntimeError(f"A writer process exited with {process.exitcode}")

    written = AuthEvent.objects.filter(client_id__in=client_ids).count() - before - writers  # minus warm-ups
    if written != events:
        raise RuntimeError(f"The writers counted {events} events but {written} reached the table")
    return Throughput(writers, same_client, events, max(elapsed, seconds), chains_intact(client_ids),
                      writer_cpu_ms=1000 * writer_cpu / events, backend_cpu_ms=1000 * backend_cpu / events)


def floors(scale: Scale) -> list[Throughput]:
    """#4's floor: the service's SQL alone, at each number of writers, on clients of their own."""
    return [throughput(writers=n, same_client=False, seconds=scale.write_seconds, floor=True) for n in scale.writers]


def chains_intact(client_ids) -> bool:
    """verify_activity_log on these clients: False if any chain forked or broke."""
    try:
        call_command("verify_activity_log", client=sorted(client_ids), stdout=io.StringIO())
    except CommandError:
        return False
    return True


def throughputs(scale: Scale) -> list[Throughput]:
    """#4: each number of writers, on clients of their own, then all on one client."""
    return [
        throughput(writers=n, same_client=same, seconds=scale.write_seconds)
        for same in (False, True)
        for n in scale.writers
    ]


# The activity log's auth receivers (activitylog/receivers.py), by their dispatch_uid.
ACTIVITY_LOG_RECEIVERS = {
    user_logged_in: "activitylog.login",
    user_logged_out: "activitylog.logout",
    user_login_failed: "activitylog.login_failed",
}


@contextmanager
def activity_log_receivers_disconnected():
    """
    The activity log's auth receivers off in this process only, then back exactly as they
    were, in their place among the others (axes' failure counter must still run first).
    """
    connected = {signal: list(signal.receivers) for signal in ACTIVITY_LOG_RECEIVERS}
    try:
        for signal, uid in ACTIVITY_LOG_RECEIVERS.items():
            if not signal.disconnect(dispatch_uid=uid):
                raise RuntimeError(f"No receiver is connected as {uid!r}: #5 would measure nothing")
        yield
    finally:
        for signal, receivers in connected.items():
            signal.receivers = receivers


def portal_logins(scale: Scale) -> tuple[Samples, Samples]:
    """#5: (with recording, without), alternated so that noise falls on both alike."""
    email = work_email("login")

    def login() -> None:
        response = HttpClient().post("/portal/login/", {"username": email, "password": PASSWORD})
        if response.status_code != 302 or response.url != "/portal/":
            raise AssertionError(f"The portal login answered {response.status_code}, not a redirect to /portal/")

    def login_unrecorded() -> None:
        with activity_log_receivers_disconnected():
            login()

    recorded, unrecorded = time_alternating([login, login_unrecorded], iterations=scale.login_iterations)
    return recorded, unrecorded
