"""
The floor of #6: what a bare design reaches on this machine, beside what the product does.

Each process is a websocket server with nothing else in it: the `websockets` library, no
Django, Channels or daphne, no access checks, no filters, no per-socket task or queue. It
hears each event as one Redis PUBLISH of the finished frame and writes that frame to every
socket it holds with `websockets.broadcast` (one write per socket, nothing awaited). #6
runs two of them against the same websocket client, sockets and frames as the product's
servers, so the difference between the two rows is what the product's path costs.

This module imports nothing from the apps: it runs in a process of its own (bench/processes.py).
"""

import asyncio
import contextlib

import redis.asyncio as aioredis
from websockets.asyncio.server import broadcast, serve

CHANNEL = "bench.floor.frames"


def main(port: int, redis_url: str, pipe) -> None:
    """Serve websockets on `port` until killed; say "ready" on `pipe` once subscribed to Redis."""
    asyncio.run(_serve(port, redis_url, pipe))


async def _serve(port: int, redis_url: str, pipe) -> None:
    sockets = set()

    async def hold(ws) -> None:
        sockets.add(ws)
        try:
            async for _ in ws:  # the client's resync: a bare server has nothing to answer
                pass
        finally:
            sockets.discard(ws)

    async with serve(hold, "127.0.0.1", port, max_size=2**20, ping_interval=None):
        redis = aioredis.from_url(redis_url)
        pubsub = redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        pipe.send("ready")
        async for message in pubsub.listen():
            if message["type"] == "message":
                with contextlib.suppress(Exception):  # a socket closing meanwhile is not the floor's business
                    broadcast(sockets, message["data"].decode())
