"""
Channel layer → this server process's sockets. One subscription per watched client per
process, however many of its tabs the process holds.

What it buys: the channel layer delivers a group message once per channel. With a
channel per socket, an event on a client watched by a thousand tabs was a thousand
queue puts, a thousand message decodes and a thousand consumer task wake-ups before the
first byte went out: most of a server's CPU in benchmark #6 (docs/benchmarks.md). Here
each process joins a client's group with one channel of its own, reads each message
once, and hands it to its sockets in a plain loop; each socket only filters it and
writes the prebuilt frame.

What stays the same: a socket is watching (its process subscribed) before the server
accepts it, so the browser's resync query cannot miss an event pushed in between; and
delivery stays best effort, mended by the resync and the periodic catch-up
(consumers.py). Works with any channel layer: Redis pub/sub in production, the
in-memory layer of the demo and the tests.
"""

import asyncio
import logging
import weakref
from typing import Protocol

from channels.layers import get_channel_layer

from activitylog import live

logger = logging.getLogger("activitylog.live")


class Watcher(Protocol):
    """A socket that watches a client's log (ActivityLogConsumer)."""

    async def on_client_message(self, message: dict, fields: dict | None) -> None:
        """Take one message of its client's group. Must not wait on anything slow: the others wait."""


async def watch(client_id: int, watcher: Watcher) -> None:
    """Deliver the messages of the client's group to `watcher` from now on (its process subscribes first)."""
    await _hub().watch(client_id, watcher)


def unwatch(client_id: int, watcher: Watcher) -> None:
    """
    Stop delivering to `watcher`, at once. The process leaves the group with its last
    socket on the client, in the background: a closing socket does not wait for Redis.
    """
    _hub().unwatch(client_id, watcher)


class _Hub:
    """
    One event loop's subscriptions: the channel it reads and the sockets of each client.

    The channel and its reader live as long as the loop, idle or not: stopping the reader
    would mean cancelling its receive, which is how channels_redis drops a channel, and a
    server stopping at that moment cuts the drop short (the layer logs it as an error).
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.reader: asyncio.Task | None = None
        self.watchers: dict[int, set[Watcher]] = {}
        self.leaving: set[asyncio.Task] = set()
        # Joins and leaves go one at a time, so a leave's unsubscribe never lands after a
        # later join's subscribe.
        self.lock = asyncio.Lock()

    async def watch(self, client_id: int, watcher: Watcher) -> None:
        async with self.lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel("activitylog.fanout.")
                self.reader = asyncio.create_task(self._read(self.channel), name="activitylog-fanout")
            # On every join, not only the first: the in-memory layer forgets a membership
            # after a day (its group_expiry); on Redis pub/sub it is a no-op once subscribed.
            await self.layer.group_add(live.client_group(client_id), self.channel)
            self.watchers.setdefault(client_id, set()).add(watcher)

    def unwatch(self, client_id: int, watcher: Watcher) -> None:
        watchers = self.watchers.get(client_id, set())
        if watcher not in watchers:
            return
        watchers.discard(watcher)
        if not watchers:
            del self.watchers[client_id]
            leaving = asyncio.create_task(self._leave(client_id))
            self.leaving.add(leaving)
            leaving.add_done_callback(self._left)

    async def _leave(self, client_id: int) -> None:
        async with self.lock:
            if client_id not in self.watchers:  # no socket came back for it meanwhile
                await self.layer.group_discard(live.client_group(client_id), self.channel)

    def _left(self, leaving: asyncio.Task) -> None:
        self.leaving.discard(leaving)
        if not leaving.cancelled() and leaving.exception() is not None:
            # Harmless but for the traffic: the group's messages find no socket here.
            logger.warning("Could not leave a client's group", exc_info=leaving.exception())

    async def _read(self, channel: str) -> None:
        while True:
            message = await self.layer.receive(channel)
            try:
                await self._deliver(message)
            except Exception:  # one bad message must not end delivery for the whole process
                logger.exception("Could not deliver a live message to this process's sockets")

    async def _deliver(self, message: dict) -> None:
        watchers = self.watchers.get(message.get("client_id"))
        if not watchers:
            return
        # Read once for all the sockets that filter on them.
        fields = live.event_fields(message) if message.get("type") == "activity.event" else None
        for watcher in list(watchers):  # a socket may leave while an earlier one is served
            try:
                await watcher.on_client_message(message, fields)
            except Exception:
                logger.exception("Could not deliver a live message to a socket")


# One hub per event loop and channel layer: a server runs one loop; tests start several,
# and may set the layers up again.
_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub]" = weakref.WeakKeyDictionary()


def _hub() -> _Hub:
    loop, layer = asyncio.get_running_loop(), get_channel_layer()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = _Hub(layer)
    return hub
