"""
`make soak`: the production path, left running. Two daphne processes (production
settings, DEBUG off) share a fresh PostgreSQL database and Redis; staff sign in through
the staff login page and open Activity Log tabs (real websockets) on both; for
SOAK_SECONDS (default 600) the tabs sit through idle stretches and trickles of portal
sign-ins and sign-outs, made through the servers' portal pages. Then it checks:

- no tab closed before the end;
- every event arrived exactly once at every tab that shows it, and at no other tab
  (another agency's manager, another client's tab, a tab filtered to another type);

prints the figures and exits 1 on any failure (2 when PostgreSQL or Redis is missing).

    SOAK_SECONDS       how long the tabs stay open (default 600)
    SOAK_DATABASE_URL  dropped and created afresh (default postgres://postgres@127.0.0.1:5432/agencyhandy_soak)
    SOAK_REDIS_URL     default redis://127.0.0.1:6379/14 (keys under a prefix of the run's own)
    SOAK_SEED          random seed of the schedule, for a repeatable run
"""

import asyncio
import os
import random
import secrets
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "var" / "soak"
IDLE_STRETCH = (15.0, 45.0)  # seconds without events: several of the channel layer's 5 s blocking reads
BURST = (2, 6)  # events in a trickle
BURST_GAP = (0.2, 2.0)  # seconds between them
GRACE = 10.0  # seconds the last events get to arrive


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS") or 600)
    seed = int(os.environ.get("SOAK_SEED") or secrets.randbelow(10**6))
    database_url = os.environ.get("SOAK_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/agencyhandy_soak"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="agencyhandy.settings",
        DATABASE_URL=database_url,
        REDIS_URL=os.environ.get("SOAK_REDIS_URL") or "redis://127.0.0.1:6379/14",
        REDIS_PREFIX=f"agencyhandy-soak-{uuid.uuid4().hex[:12]}",
        # A fresh database each run, so a fresh key: the chain key derives from it.
        SECRET_KEY=secrets.token_urlsafe(50),
    )
    os.environ.pop("DEBUG", None)
    sys.path.insert(0, str(ROOT))

    from soak.data import recreate_database

    try:
        recreate_database(database_url)
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        print(f"soak: cannot create the soak database at {database_url}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2

    import django

    django.setup()
    from django.core.management import call_command

    from soak.data import make_people
    from tests.servers import redis_available, server_redis

    if not redis_available():
        print(f"soak: Redis is not reachable at {server_redis()[0]}", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)
    client_ids = make_people()
    print(f"Soak: two daphne processes on PostgreSQL and Redis, tabs open {seconds:g} s, seed {seed}; "
          f"server logs in {LOGS.relative_to(ROOT)}/")
    result = _run(client_ids, seconds, random.Random(seed))
    print(result.table())
    failures = result.failures()
    for failure in failures:
        print(f"FAIL: {failure}")
    print("FAIL" if failures else "PASS")
    return 1 if failures else 0


def _run(client_ids: dict[str, int], seconds: float, rng: random.Random):
    from activitylog.models import AuthEvent
    from soak.report import Result
    from tests.servers import asgi_server

    LOGS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        urls = []
        for n in range(2):
            log = LOGS / f"server-{n}.log"
            log.write_text("")
            urls.append(stack.enter_context(asgi_server(log_path=log)))
        start_id = AuthEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        started = time.monotonic()
        tabs, actions, idle = asyncio.run(_soak(urls, client_ids, seconds, start_id, rng))
        duration = time.monotonic() - started
    events = list(AuthEvent.objects.filter(id__gt=start_id).values_list("id", "client_id", "event_type", "occurred_at"))
    errors = [line for n in range(2) for line in (LOGS / f"server-{n}.log").read_text().splitlines()
              if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")]
    return Result(duration=duration, urls=urls, tabs=tabs, client_ids=client_ids, events=events,
                  actions=actions, longest_idle=idle, server_errors=errors)


async def _soak(urls: list[str], client_ids: dict[str, int], seconds: float, start_id: int, rng: random.Random):
    from soak.data import PASSWORD, PORTAL_USERS, STAFF, TABS
    from soak.sockets import OpenTab
    from tests.servers import HttpBrowser

    # Staff sign in through the staff login page; their tabs share the session, as tabs do.
    sessions = {}
    for n, email in enumerate(STAFF):
        staff = HttpBrowser(urls[n % 2])
        await asyncio.to_thread(staff.sign_in, email, PASSWORD)
        sessions[email] = staff.cookie("sessionid")
    tabs = [OpenTab(tab, urls[tab.server], client_ids[tab.client]) for tab in TABS]
    for tab in tabs:
        await tab.open(sessions[tab.tab.staff], after=start_id)

    portal = {email: HttpBrowser(urls[0]) for email in PORTAL_USERS}
    signed_in: set[str] = set()
    actions = 0
    longest_idle = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        # Short runs (CI's minute) get the shortest stretches, so they still see several trickles.
        idle = min(rng.uniform(IDLE_STRETCH[0], max(IDLE_STRETCH[0], min(IDLE_STRETCH[1], seconds / 4))),
                   deadline - time.monotonic())
        await asyncio.sleep(idle)  # the soak's point: tabs sit idle, as they do all day
        longest_idle = max(longest_idle, idle)
        for _ in range(rng.randint(*BURST)):
            if time.monotonic() >= deadline:
                break
            email = rng.choice(list(PORTAL_USERS))
            browser = portal[email]
            browser.base_url = rng.choice(urls)  # behind a load balancer, any process serves any request
            if email in signed_in:
                await asyncio.to_thread(browser.portal_sign_out)
                signed_in.discard(email)
            else:
                await asyncio.to_thread(browser.sign_in, email, PASSWORD, login_path="/portal/login/")
                signed_in.add(email)
            actions += 1
            await asyncio.sleep(rng.uniform(*BURST_GAP))

    await _wait_for_deliveries(tabs, start_id)
    for tab in tabs:
        await tab.close()
    await asyncio.to_thread(_wait_for_teardown)
    return tabs, actions, longest_idle


def _wait_for_teardown() -> None:
    """
    Wait (up to GRACE seconds) until the servers have torn the closed tabs down: no
    socket's channel or group still subscribed in Redis under this run's prefix (each
    process's fan-out channel lives as long as the process). Stopping a server while a
    socket's teardown is still unsubscribing cuts it short, and channels_redis logs that
    as an error: the soak would report its own shutdown, not the product.
    """
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    prefix = os.environ["REDIS_PREFIX"]
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline:
        left = [c for c in client.pubsub_channels(f"{prefix}*") if b"activitylog.fanout." not in c]
        if not left:
            return
        time.sleep(0.05)


async def _wait_for_deliveries(tabs, start_id: int) -> None:
    """Give the last events up to GRACE seconds to reach every tab that shows them."""
    from soak.report import expected_deliveries

    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline:
        events = await asyncio.to_thread(_events_since, start_id)
        if all(event_id in tab.arrivals for tab, event_id in expected_deliveries(tabs, events)):
            return
        await asyncio.sleep(0.2)


def _events_since(start_id: int) -> list[tuple]:
    from activitylog.models import AuthEvent

    return list(AuthEvent.objects.filter(id__gt=start_id).values_list("id", "client_id", "event_type", "occurred_at"))


if __name__ == "__main__":
    sys.exit(main())
