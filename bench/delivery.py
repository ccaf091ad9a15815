"""
Measurement #6: live delivery latency, from the commit of an event to the websocket
frame at the client, with many sockets open on two real ASGI server processes (started
as the browser tests start them, tests/servers.py) that share Redis. Two shapes: every
socket on one client's log (the worst case: each event goes to all of them), and the
sockets spread over many clients (the usual one: each event goes to a few).
"""

import dataclasses
import math
import os
import re
import signal
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC

import redis
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction

from activitylog import live
from activitylog.models import AuthEvent
from activitylog.services import auth_event_record
from bench import ROOT, broadcaster
from bench.cpu import cpu_seconds, machine_busy_seconds, server_pid
from bench.dataset import USER_AGENTS, client_ids, manager_email, work_email
from bench.processes import CONTEXT, start_process
from bench.scale import Scale
from bench.stats import Samples
from clients.models import User
from tests.servers import asgi_server, free_port

SERVER_PROCESSES = 2
SERVER_LOGS = ROOT / "var"
# The spread run records this many times the events, as often: each reaches only the
# sockets of its own client, and a p99 needs samples.
SPREAD_EVENTS = 5
ROW_TAG = re.compile(r'<tr id="event-\d+"')


@dataclass(frozen=True)
class Delivery:
    sockets: int
    clients: int  # how many clients the sockets watch: 1, or spread over many
    events: int
    latencies: Samples | None  # ms, one per (socket, event) that arrived
    lost: int
    expected: int  # frames that should have arrived: each event on each socket watching its client
    closed_by_server: list[int]  # close codes of sockets the server ended during the run
    cpu_ms_per_event: dict[str, float]  # CPU spent while the events were delivered, per event, by who spent it
    bare: bool = False  # served by bench/broadcaster.py: the floor, not the product


@dataclass(frozen=True)
class _Watch:
    """Who the sockets are and what is recorded: a socket per path, an event per portal user in turn."""

    paths: list[tuple[str, str]]  # (websocket path, session cookie), one per socket
    portal_users: list[User]  # the event n is recorded for portal_users[n % len]


def staff_session(user: User) -> str:
    """A signed-in session, as the staff login would leave it, for the sockets' cookie."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    # The backend that login() would record: the first that can load users (the login
    # throttle, first in the list, authenticates no one).
    session[BACKEND_SESSION_KEY] = next(
        path for path in settings.AUTHENTICATION_BACKENDS if hasattr(load_backend(path), "get_user")
    )
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def _manager_cookie(agency, cookies: dict) -> str:
    if agency.pk not in cookies:
        manager = User.objects.get(email=manager_email(int(agency.slug.removeprefix("bench-"))))
        cookies[agency.pk] = staff_session(manager)
    return cookies[agency.pk]


def _one_client(sockets: int, cookies: dict) -> _Watch:
    """Every socket on the live work client's log (its agency's manager's tabs)."""
    portal_user = User.objects.select_related("client__agency").get(email=work_email("live"))
    path = f"/ws/clients/{portal_user.client_id}/activity/"
    return _Watch([(path, _manager_cookie(portal_user.client.agency, cookies))] * sockets, [portal_user])


def _spread(sockets: int, clients: int, cookies: dict) -> _Watch:
    """A socket on each of `clients` dataset clients in turn, opened by its agency's manager."""
    ids = client_ids(clients)
    users: dict[int, User] = {}
    for user in User.objects.filter(client_id__in=ids).select_related("client__agency").order_by("pk"):
        users.setdefault(user.client_id, user)
    watched = [users[pk] for pk in ids]
    paths = [
        (f"/ws/clients/{user.client_id}/activity/", _manager_cookie(user.client.agency, cookies))
        for user in (watched[n % clients] for n in range(sockets))
    ]
    # Events go round the clients with a stride, so that they land all over the set.
    stride = next(k for k in range(clients // 3 + 1, clients + 1) if math.gcd(k, clients) == 1)
    return _Watch(paths, [watched[(n * stride) % clients] for n in range(clients)])


def deliveries(scale: Scale) -> list[Delivery]:
    """
    #6 at each number of sockets on one client, then the most sockets spread over as many
    clients (as far as the dataset has them): the servers' logs go to var/bench-server-N.log.
    Last, the floor: the most sockets on one client, on bare broadcasters instead.
    """
    cookies: dict[int, str] = {}
    most = max(scale.sockets)
    spread_over = min(most, scale.clients)
    SERVER_LOGS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        urls = [
            stack.enter_context(asgi_server(log_path=SERVER_LOGS / f"bench-server-{n}.log"))
            for n in range(SERVER_PROCESSES)
        ]
        one = [
            _delivery(urls, _one_client(count, cookies), scale.live_events, scale.live_interval)
            for count in scale.sockets
        ]
        spread = _delivery(urls, _spread(most, spread_over, cookies), scale.live_events * SPREAD_EVENTS,
                           scale.live_interval / SPREAD_EVENTS)
    return [*one, spread, bare_floor(scale)]


def _delivery(urls, watch: _Watch, events: int, interval: float) -> Delivery:
    watchers = Counter(path for path, _ in watch.paths)
    return _deliver(urls, watch.paths, {f"daphne {n}": server_pid(url) for n, url in enumerate(urls, start=1)},
                    events, lambda: _record(watch, events, interval, watchers))


def _deliver(urls, paths, servers: dict[str, int], events: int, record) -> Delivery:
    """Open the sockets of `paths` on the servers at `urls`, `record()` the events, and collect the frames."""
    after = AuthEvent.objects.order_by("-id").values_list("id", flat=True).first()
    ours, theirs = CONTEXT.Pipe()
    process = start_process("bench.wsclient.main", urls, paths, after or 0, theirs)
    try:
        status, *detail = _receive(ours, timeout=300)
        if status != "ready":
            raise RuntimeError(f"The websocket client failed: {detail}")
        cpu = _CpuWatch({**servers, "websocket client": process.pid, "recording": os.getpid()})
        committed, expected = record()
        ours.send(("done", expected))
        status, *detail = _receive(ours, timeout=120)
        if status != "arrivals":
            raise RuntimeError(f"The websocket client failed: {detail}")
        arrivals, closed = detail
        cpu_ms_per_event = cpu.per_event(events)
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    latencies = [(t - committed[e]) / 1e6 for e, times in arrivals.items() for t in times]
    total = sum(expected.values())
    return Delivery(len(paths), len({path for path, _ in paths}), events,
                    Samples(latencies) if latencies else None, total - len(latencies), total, closed, cpu_ms_per_event)


def bare_floor(scale: Scale) -> Delivery:
    """
    The most sockets on one client, served instead by two bare broadcaster processes
    (bench/broadcaster.py): the same client and frames, each event one PUBLISH of a frame
    built once. Arrival minus publish, as #6 takes arrival minus commit.
    """
    sockets, events = max(scale.sockets), scale.live_events
    frame = _real_frame()
    publisher = redis.Redis.from_url(settings.REDIS_URL)
    servers, urls = {}, []
    for n in range(1, SERVER_PROCESSES + 1):
        port, (ours, theirs) = free_port(), CONTEXT.Pipe()
        process = start_process("bench.broadcaster.main", port, settings.REDIS_URL, theirs)
        if _receive(ours, timeout=60) != "ready":
            raise RuntimeError("A bare broadcaster did not start")
        servers[f"bare server {n}"], urls = process.pid, [*urls, f"http://127.0.0.1:{port}"]
    first_id = 10**15  # no event of the dataset has such an id

    def record() -> tuple[dict, dict]:
        committed = {}
        for event_id in range(first_id, first_id + events):
            committed[event_id] = time.time_ns()
            publisher.publish(broadcaster.CHANNEL, ROW_TAG.sub(f'<tr id="event-{event_id}"', frame))
            time.sleep(scale.live_interval)
        return committed, dict.fromkeys(committed, sockets)

    try:
        return dataclasses.replace(_deliver(urls, [("/", "")] * sockets, servers, events, record), bare=True)
    finally:
        for pid in servers.values():
            os.kill(pid, signal.SIGTERM)


def _real_frame() -> str:
    """The frame the product pushes for one of the live work client's events, as the tabs receive it."""
    portal_user = User.objects.get(email=work_email("live"))
    event = AuthEvent.objects.filter(client_id=portal_user.client_id).order_by("-id").first()
    return live.rows_frame([live.render_row(event, UTC)])


class _CpuWatch:
    """
    Where the CPU goes while events are delivered: each server process, the websocket
    client (the tabs' side), this process (recording) and the whole machine, from /proc,
    from the first event until the last frame arrived (or the client gave up waiting).
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before = self._sample()

    def _sample(self) -> dict[str, float]:
        return {**{who: cpu_seconds(pid) for who, pid in self.pids.items()}, "machine": machine_busy_seconds()}

    def per_event(self, events: int) -> dict[str, float]:
        after = self._sample()
        return {who: (after[who] - self.before[who]) * 1000 / events for who in after}


def _record(watch: _Watch, events: int, interval: float, watchers: Counter) -> tuple[dict, dict]:
    """Record the events through the service: (event id -> commit time in ns, event id -> sockets watching)."""
    committed: dict[int, int] = {}
    expected: dict[int, int] = {}
    for n in range(events):
        portal_user = watch.portal_users[n % len(watch.portal_users)]
        with transaction.atomic():
            stamp: list[int] = []
            # Registered before the service's own push, so it runs first after the commit.
            transaction.on_commit(lambda stamp=stamp: stamp.append(time.time_ns()))
            event = auth_event_record(user=portal_user, event_type="login_failed", ip="198.51.100.9",
                                      user_agent=USER_AGENTS[n % len(USER_AGENTS)], reason="bad_password")
        committed[event.pk] = stamp[0]
        expected[event.pk] = watchers[f"/ws/clients/{portal_user.client_id}/activity/"]
        time.sleep(interval)
    return committed, expected


def _receive(pipe, *, timeout: float):
    if not pipe.poll(timeout):
        raise RuntimeError(f"The websocket client did not answer within {timeout:.0f} s")
    return pipe.recv()
