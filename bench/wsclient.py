"""
The websocket side of measurement #6, in a process of its own: open many Activity Log
sockets as a signed-in manager, and note when each event's row arrives on each socket.

No Django here: this is a plain client, like the browser tab it stands in for.
"""

import asyncio
import json
import re
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROW_ID = re.compile(r'<tr id="event-(\d+)"')
CONNECTS_AT_ONCE = 50
GRACE_SECONDS = 5.0


def main(base_urls: list[str], paths: list[tuple[str, str]], after: int, pipe) -> None:
    """
    Open a socket per (path, session cookie) in `paths`, spread over the servers. Report
    "ready" on `pipe` once every socket is open; then, told "done" with how many sockets
    should see each event, wait for them (up to GRACE_SECONDS) and report the arrivals.
    """
    try:
        asyncio.run(_run(base_urls, paths, after, pipe))
    except Exception as exc:  # noqa: BLE001 - the parent must hear of any failure
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


async def _run(base_urls, paths, after, pipe) -> None:
    arrivals: dict[int, list[int]] = {}  # event id -> arrival times (ns), one per socket
    closed: list[int] = []
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    async def open_socket(index: int):
        base = base_urls[index % len(base_urls)]
        path, session_cookie = paths[index]
        async with gate:
            ws = await connect(
                base.replace("http://", "ws://") + path, open_timeout=60, max_size=2**20,
                additional_headers={"Cookie": f"sessionid={session_cookie}", "Origin": base},
            )
            # As the browser does on every (re)connect: "I show everything up to `after`".
            await ws.send(json.dumps({"type": "resync", "after": after}))
            return ws

    async def read(ws) -> None:
        try:
            async for frame in ws:
                now = time.time_ns()
                for match in ROW_ID.finditer(frame):
                    arrivals.setdefault(int(match.group(1)), []).append(now)
        except ConnectionClosed:
            pass
        if ws.close_code not in (None, 1000):
            closed.append(ws.close_code)

    connections = await asyncio.gather(*(open_socket(i) for i in range(len(paths))))
    readers = [asyncio.create_task(read(ws)) for ws in connections]
    await asyncio.sleep(0.5)  # a socket refused after accept (4403) closes within this
    if 4403 in closed:
        raise RuntimeError(f"The server refused {closed.count(4403)} sockets (4403): check the session")
    # Any other close (1011: the server failed) is a real result: those rows count as lost.
    pipe.send(("ready", len(paths)))

    loop = asyncio.get_running_loop()
    _, expected = await loop.run_in_executor(None, pipe.recv)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and any(len(arrivals.get(e, ())) < n for e, n in expected.items()):
        await asyncio.sleep(0.05)
    for ws in connections:
        await ws.close()
    await asyncio.gather(*readers)
    pipe.send(("arrivals", {e: arrivals.get(e, []) for e in expected}, closed))
