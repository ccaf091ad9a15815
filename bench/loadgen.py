"""
The load generator of measurement #10, in a process of its own: staff open Activity Log
tabs at a fixed rate against real daphne processes, and it notes how long each took.

Open loop, as wrk2 does it: request i is due at `i / rate` seconds after the step starts,
whatever the answers before it, and its latency runs from when it was *due* to the last
byte of its answer. A server that falls behind therefore shows its queue in the figures
instead of slowing the sender down (no coordinated omission).

Why written here, on asyncio and raw HTTP/1.1 keep-alive connections: the project's
lock file has no load tool (no locust, wrk, aiohttp or httpx) and the shared virtualenv
cannot change; a GET with a cookie and a Content-Length or chunked answer is all the tab
needs, and one asyncio process sends a few thousand of those a second, far above what
two daphne processes serve. It reports its own CPU time, so a saturated generator shows.

No Django here: a plain client, like the browsers it stands in for.
"""

import asyncio
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# What staff do in the tab, and how often (issue 11, #10).
MIX = {"first page": 0.30, "first page (htmx)": 0.30, "filter": 0.25, "load older": 0.15}
FILTERS = ("type=login_failed", "range=7d", "q={email}")
CONNECTIONS_PER_SERVER = 32
NO_ANSWER = 0  # the status noted for a request with no answer: none by the step's end, or a broken connection


@dataclass(frozen=True)
class Target:
    """A client whose tab is opened: its id, the cookie of staff who may read it, a portal user's email."""

    client_id: int
    session_cookie: str
    email: str


@dataclass
class StepResult:
    rate: float
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)  # ms, by kind
    statuses: dict[int, int] = field(default_factory=dict)
    generator_cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    late_sends_ms: float = 0.0  # how far behind its schedule the generator sent, at worst


def schedule(*, rate: float, seconds: float, seed: int, kinds: dict[str, float] = MIX) -> list[tuple[float, str]]:
    """(due time in seconds from the start, kind) of each request of a step: one every 1/rate s."""
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    rng = random.Random(seed)
    names, weights = list(kinds), list(kinds.values())
    return [(i / rate, rng.choices(names, weights)[0]) for i in range(round(rate * seconds))]


def request_path(kind: str, target: Target, cursor: str, pick: int) -> tuple[str, dict[str, str]]:
    """The path and the htmx headers of one request of `kind`, as the browser sends them."""
    tab = f"/clients/{target.client_id}/activity/"
    if kind == "first page":
        return tab, {}
    htmx = {"HX-Request": "true", "HX-Current-URL": tab}
    if kind == "first page (htmx)":
        return tab, {**htmx, "HX-Target": "activity-results"}
    if kind == "filter":
        query = FILTERS[pick % len(FILTERS)].format(email=target.email)
        return f"{tab}?{query}", {**htmx, "HX-Target": "activity-results"}
    if kind == "load older":
        return f"{tab}?cursor={cursor}", {**htmx, "HX-Target": "load-older"}
    raise ValueError(f"unknown kind of request: {kind}")


def encode_request(host: str, path: str, cookie: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", f"Cookie: sessionid={cookie}",
             "User-Agent: bench-loadgen", "Accept: text/html", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server keeps the connection) of one HTTP/1.1 answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() != "close"


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent: the blank line
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class _Server:
    """Keep-alive connections to one server; a request waits for a free one (and that wait counts)."""

    def __init__(self, base_url: str, size: int) -> None:
        parts = urlsplit(base_url)
        self.host, self.port, self.netloc = parts.hostname, parts.port, parts.netloc
        self.idle: asyncio.Queue = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)  # opened on first use

    async def get(self, path: str, cookie: str, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = await self.idle.get()
        keep = False
        try:
            if connection is None:
                connection = await asyncio.open_connection(self.host, self.port)
            reader, writer = connection
            writer.write(encode_request(self.netloc, path, cookie, headers))
            status, body, keep = await read_response(reader)
            return status, body
        finally:
            if not keep and connection is not None:
                connection[1].close()
            self.idle.put_nowait(connection if keep else None)


class Generator:
    """Open tabs of `targets` on `base_urls` (round robin, as a load balancer would)."""

    def __init__(self, base_urls: list[str], targets: list[Target]) -> None:
        self.servers = [_Server(url, CONNECTIONS_PER_SERVER) for url in base_urls]
        self.targets = targets
        self.cursors: dict[int, str] = {}

    async def find_cursors(self) -> None:
        """A "Load older" cursor of each client, taken from its first page as the browser would."""
        for target in self.targets:
            tab = f"/clients/{target.client_id}/activity/"
            status, body = await self.servers[0].get(tab, target.session_cookie, {})
            if status != 200:
                raise RuntimeError(f"The tab of client {target.client_id} answered {status}: check the session")
            if cursor := cursor_in(body.decode("utf-8", "replace")):
                self.cursors[target.client_id] = cursor
        if not self.cursors:
            raise RuntimeError("No client has a 'Load older' link: the targets have too few events")

    async def step(self, *, rate: float, seconds: float, seed: int, drain: float) -> StepResult:
        """Send a step's schedule on time; wait up to `drain` s after it for the last answers."""
        plan = schedule(rate=rate, seconds=seconds, seed=seed)
        rng = random.Random(seed + 1)
        result = StepResult(rate=rate, seconds=seconds)
        tasks = []
        cpu, start = time.process_time(), time.perf_counter()
        for n, (due, kind) in enumerate(plan):
            delay = start + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # Late or not, its latency counts from when it was due.
            result.late_sends_ms = max(result.late_sends_ms, (time.perf_counter() - start - due) * 1000)
            target = self._target_for(kind, rng)
            path, headers = request_path(kind, target, self.cursors.get(target.client_id, ""), rng.randrange(99))
            server = self.servers[n % len(self.servers)]
            tasks.append(asyncio.create_task(self._timed(server, path, target, headers, start + due, kind, result)))
        _, pending = await asyncio.wait(tasks, timeout=max(drain - (time.perf_counter() - start - seconds), 0.1))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        result.wall_seconds = time.perf_counter() - start
        result.generator_cpu_seconds = time.process_time() - cpu
        return result

    def _target_for(self, kind: str, rng: random.Random) -> Target:
        pool = [t for t in self.targets if t.client_id in self.cursors] if kind == "load older" else self.targets
        return rng.choice(pool)

    @staticmethod
    async def _timed(server: _Server, path, target: Target, headers, due: float, kind: str, result: StepResult):
        status = NO_ANSWER
        try:
            status, _ = await server.get(path, target.session_cookie, headers)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # refused, reset or garbled: no answer, an error like any non-2xx
        finally:
            # Cancelled at the end of the step: noted with the time it had waited so far.
            result.latencies.setdefault(kind, []).append((time.perf_counter() - due) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1


def cursor_in(page: str) -> str:
    """The cursor of the page's "Load older" link, or "" when there is none."""
    start = page.find('id="load-older"')
    if start < 0:
        return ""
    link = page.find("cursor=", start)
    if link < 0:
        return ""
    end = min(i for i in (page.find('"', link), page.find("&", link)) if i >= 0)
    return page[link + len("cursor="): end]


def main(base_urls: list[str], targets: list[Target], pipe) -> None:
    """
    Report ("ready", cursors found) on `pipe`, then answer each ("step", rate, seconds,
    seed, drain) with ("step", StepResult), until told ("stop",).
    """
    try:
        asyncio.run(_serve(base_urls, targets, pipe))
    except Exception as exc:  # noqa: BLE001 - the parent must hear of any failure
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


async def _serve(base_urls: list[str], targets: list[Target], pipe) -> None:
    generator = Generator(base_urls, targets)
    await generator.find_cursors()
    pipe.send(("ready", len(generator.cursors)))
    loop = asyncio.get_running_loop()
    while True:
        command, *args = await loop.run_in_executor(None, pipe.recv)
        if command == "stop":
            return
        rate, seconds, seed, drain = args
        pipe.send(("step", await generator.step(rate=rate, seconds=seconds, seed=seed, drain=drain)))
