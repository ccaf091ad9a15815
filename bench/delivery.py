"""
Measurement #6: live delivery latency, from the commit of an event to the websocket
frame at the client, with many sockets open on two real ASGI server processes (started
as the browser tests start them, tests/servers.py) that share Redis.
"""

import time
from contextlib import ExitStack
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction

from activitylog.models import AuthEvent
from activitylog.services import auth_event_record
from bench import ROOT
from bench.dataset import USER_AGENTS, manager_email, work_email
from bench.processes import CONTEXT, start_process
from bench.scale import Scale
from bench.stats import Samples
from clients.models import User
from tests.servers import asgi_server

SERVER_PROCESSES = 2
SERVER_LOGS = ROOT / "var"


@dataclass(frozen=True)
class Delivery:
    sockets: int
    events: int
    latencies: Samples | None  # ms, one per (socket, event) that arrived
    lost: int
    closed_by_server: list[int]  # close codes of sockets the server ended during the run


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


def deliveries(scale: Scale) -> list[Delivery]:
    """#6 at each number of sockets: the servers' logs go to var/bench-server-N.log."""
    portal_user = User.objects.select_related("client__agency").get(email=work_email("live"))
    client = portal_user.client
    manager = User.objects.get(email=manager_email(int(client.agency.slug.removeprefix("bench-"))))
    cookie = staff_session(manager)
    path = f"/ws/clients/{client.pk}/activity/"
    SERVER_LOGS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        urls = [
            stack.enter_context(asgi_server(log_path=SERVER_LOGS / f"bench-server-{n}.log"))
            for n in range(SERVER_PROCESSES)
        ]
        return [
            _delivery(urls, path, cookie, count, portal_user, scale.live_events, scale.live_interval)
            for count in scale.sockets
        ]


def _delivery(urls, path, cookie, sockets, portal_user, events, interval) -> Delivery:
    after = AuthEvent.objects.filter(client_id=portal_user.client_id).order_by("-id").values_list("id", flat=True).first()
    ours, theirs = CONTEXT.Pipe()
    process = start_process("bench.wsclient.main", urls, path, cookie, sockets, after or 0, theirs)
    try:
        status, *detail = _receive(ours, timeout=300)
        if status != "ready":
            raise RuntimeError(f"The websocket client failed: {detail}")
        committed: dict[int, int] = {}
        for n in range(events):
            with transaction.atomic():
                stamp: list[int] = []
                # Registered before the service's own push, so it runs first after the commit.
                transaction.on_commit(lambda stamp=stamp: stamp.append(time.time_ns()))
                event = auth_event_record(user=portal_user, event_type="login_failed", ip="198.51.100.9",
                                          user_agent=USER_AGENTS[n % len(USER_AGENTS)], reason="bad_password")
            committed[event.pk] = stamp[0]
            time.sleep(interval)
        ours.send(("done", list(committed)))
        status, *detail = _receive(ours, timeout=120)
        if status != "arrivals":
            raise RuntimeError(f"The websocket client failed: {detail}")
        arrivals, closed = detail
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    latencies = [(t - committed[e]) / 1e6 for e, times in arrivals.items() for t in times]
    lost = sockets * events - len(latencies)
    return Delivery(sockets, events, Samples(latencies) if latencies else None, lost, closed)


def _receive(pipe, *, timeout: float):
    if not pipe.poll(timeout):
        raise RuntimeError(f"The websocket client did not answer within {timeout:.0f} s")
    return pipe.recv()
