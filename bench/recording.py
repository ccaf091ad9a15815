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
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient

from activitylog.models import AuthEvent
from activitylog.services import auth_event_record
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

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


def writer_main(email: str, seconds: float, barrier, results) -> None:
    """One writer process: record logins as fast as the service allows for `seconds`."""
    user = User.objects.get(email=email)
    salt = os.urandom(8).hex()

    def record(n: int) -> None:
        auth_event_record(
            user=user, event_type="login", ip="203.0.113.7", user_agent=USER_AGENTS[n % len(USER_AGENTS)],
            session_ref=hashlib.sha256(f"{salt}:{n}".encode()).hexdigest(),
        )

    record(-1)  # connect, warm the caches; not counted
    barrier.wait()
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        record(count)
        count += 1
    results.put(count)


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


def throughput(*, writers: int, same_client: bool, seconds: float) -> Throughput:
    emails = writer_emails()
    targets = [emails[0]] * writers if same_client else [emails[i % len(emails)] for i in range(writers)]
    client_ids = set(User.objects.filter(email__in=targets).values_list("client_id", flat=True))
    before = AuthEvent.objects.filter(client_id__in=client_ids).count()
    barrier, results = CONTEXT.Barrier(writers + 1), CONTEXT.Queue()
    processes = [
        start_process(f"{__name__}.writer_main", email, seconds, barrier, results) for email in targets
    ]
    barrier.wait(timeout=90)  # broken at once if a writer dies first
    started = time.monotonic()
    events = sum(results.get(timeout=seconds + 60) for _ in processes)
    elapsed = time.monotonic() - started
    for process in processes:
        process.join(timeout=30)
        if process.exitcode != 0:
            raise RuntimeError(f"A writer process exited with {process.exitcode}")

    written = AuthEvent.objects.filter(client_id__in=client_ids).count() - before - writers  # minus warm-ups
    if written != events:
        raise RuntimeError(f"The writers counted {events} events but {written} reached the table")
    return Throughput(writers, same_client, events, max(elapsed, seconds), chains_intact(client_ids))


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
