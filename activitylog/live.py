"""
After commit → channel layer. Publishes new events to the open Activity Log tabs, and
tells open sockets when a staff user's access changes.

Groups:
- `activity.client.<id>`: every server process with a socket on that client's log; each
  hands the message to its own sockets (fanout.py). Its messages name the client.
- `activity.staff.<user id>`: every socket of one staff user, to close them when access ends.

Publishing is best effort: the event is already committed, and a tab that misses a
message catches up when its socket reconnects (see consumers.py). A failure (Redis
down, say) is logged and never fails the login that caused it. Nor does the login wait
for it: the row is rendered and sent on a thread of its own.
"""

import asyncio
import atexit
import concurrent.futures
import logging
import operator
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from functools import partial

import redis
from asgiref.sync import SyncToAsync
from channels.layers import DEFAULT_CHANNEL_LAYER, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import decode_hosts
from django.conf import settings
from django.db import close_old_connections
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from activitylog.models import AuthEvent
from activitylog.rows import prepare_rows

logger = logging.getLogger("activitylog.live")

ROW_TEMPLATE = "activitylog/activity_tab.html#row"


def client_group(client_id: int) -> str:
    return f"activity.client.{client_id}"


def staff_group(user_id: int) -> str:
    return f"activity.staff.{user_id}"


def render_row(event: AuthEvent, tz: tzinfo, *, live: bool = True) -> str:
    """The event's table row, from the same partial the page uses."""
    return render_rows([event], tz, live=live)[0]


def render_rows(events: list[AuthEvent], tz: tzinfo, *, live: bool = True) -> list[str]:
    """Each event's table row, prepared together (one signals query for them all)."""
    prepare_rows(events, tz=tz)
    return [render_to_string(ROW_TEMPLATE, {"event": event, "live": live}) for event in events]


def event_message(event: AuthEvent, tz: tzinfo) -> dict:
    """The group message for one event: rendered once, filtered per socket by its fields."""
    return {
        "type": "activity.event",
        "client_id": event.client_id,
        "id": event.pk,
        "agency_id": event.agency_id,
        "event_type": event.event_type,
        "user_id": event.user_id,
        "ip": event.ip,
        "occurred_at": event.occurred_at.timestamp(),
        # The whole websocket frame, built once here rather than on each socket it reaches.
        "frame": rows_frame([render_row(event, tz)]),
    }


def rows_frame(rows: list[str]) -> str:
    """The websocket frame that puts these rendered rows at the top of the tab's list (an htmx out-of-band swap)."""
    return format_html('<tbody hx-swap-oob="afterbegin:#activity-rows">{}</tbody>', mark_safe("".join(rows)))


def event_fields(message: dict) -> dict:
    """What the tab's filter reads of the event in an `event_message` (see EventFilters.matches)."""
    return {
        "event_type": message["event_type"],
        "user_id": message["user_id"],
        "ip": message["ip"],
        "occurred_at": datetime.fromtimestamp(message["occurred_at"], tz=UTC),
    }


class _PublisherLoop:
    """
    One event loop per process, in a daemon thread, for publishes from plain sync code.

    Outside an ASGI server (management commands, the in-process test client, any sync
    worker) `async_to_sync` starts a new event loop for every call, and the Redis layer,
    which keeps connections per loop, then opens and closes a connection per event.
    A loop that lives on keeps them open.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # none yet, or forked since
                self._loop, self._pid = asyncio.new_event_loop(), os.getpid()
                threading.Thread(target=self._loop.run_forever, name="activitylog-publisher", daemon=True).start()
            return self._loop


class _RenderThread:
    """
    One thread per process that renders live rows, in the order their events committed.

    What it buys: the row's render (its signals query and the template, about 0.3 ms) and
    its PUBLISH leave the response's path. Renders run one at a time, so a client's rows
    reach Redis (or the loop, for other layers), and the tabs, in commit order. Handing
    one over is a put on a plain queue: no future, lock or callback per event, as a
    thread pool would have (docs/benchmarks.md #4).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue | None = None
        self._pid = 0

    def submit(self, work: Callable[[], None]) -> None:
        """Run `work()` on the render thread, after everything submitted before it."""
        if self._pid != os.getpid():  # none yet, or forked since
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    threading.Thread(target=self._run, args=[self._queue], name="activitylog-render", daemon=True).start()
                    self._pid = os.getpid()
        self._queue.put(work)

    def wait(self, timeout: float) -> None:
        """Wait until the work submitted so far is done (or `timeout` seconds have passed)."""
        if self._pid == os.getpid():
            done = threading.Event()
            self._queue.put(done.set)
            done.wait(timeout)

    @staticmethod
    def _run(work_queue: queue.SimpleQueue) -> None:
        while True:
            work = work_queue.get()
            try:
                work()  # each piece of work logs its own errors; this only keeps the thread alive
            except Exception:
                logger.exception("Live rows: a render failed")


_publisher_loop = _PublisherLoop()
_render_thread = _RenderThread()
_pending: set[concurrent.futures.Future] = set()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """
    The running event loop that called this thread through `sync_to_async`, or None.

    What it buys: inside an ASGI server, a view's publish goes to the server's own loop,
    where its sockets live. The in-memory channel layer only delivers there, and the
    Redis layer reuses that loop's connections instead of the publisher thread's.

    What it relies on: asgiref has no public way to ask this. Its private
    `SyncToAsync.threadlocal` is set in every thread that sync_to_async runs code in
    (`main_event_loop` and `main_event_loop_pid`, for async_to_sync to find its way
    back). tests/test_live.py pins that, so an asgiref release that changes it fails
    there instead of sending live rows to the wrong loop.
    """
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None  # not such a thread, or one from before a fork
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    # asgiref never clears the mark: a thread whose loop has since closed keeps it.
    return loop if loop is not None and not loop.is_closed() else None


def _send(group: str, message: dict, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """
    Hand the message to an event loop (`loop`, else the server's or the publisher's) and
    return at once.

    The login (or logout) that caused it is already committed; it does not wait for
    Redis. A failure is logged when it happens, and the tab resyncs on reconnect.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    loop = loop or _server_loop() or _publisher_loop.get()
    _track(asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop), group)


def _track(future: concurrent.futures.Future, group: str) -> None:
    _pending.add(future)
    future.add_done_callback(partial(_sent, group))


def _sent(group: str, future: concurrent.futures.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("Live update to %s failed; open tabs will catch up on reconnect", group,
                     exc_info=future.exception())
    _pending.discard(future)  # last: wait_for_publishes() also waits for the logging


def wait_for_publishes(timeout: float = 5.0) -> None:
    """Wait until the rows and messages handed over so far are rendered and sent (or failed); for tests and exits."""
    deadline = time.monotonic() + timeout
    _render_thread.wait(timeout)  # its sends to a loop are tracked by then
    while _pending and time.monotonic() < deadline:
        time.sleep(0.01)


# A management command (record_session_expiries from cron, say) exits as soon as its work
# is committed; the render and publisher threads are daemons and would die with rows
# unsent. Interpreter exit runs this first, while those threads still run.
atexit.register(wait_for_publishes)


def auth_event_publish(event: AuthEvent, tz: tzinfo) -> None:
    """
    Push a committed event to the tabs watching its client. Call it after commit.

    Returns at once: the row is rendered on the render thread, then sent; the caller's
    own `event` is left as it was. `wait_for_publishes()` waits for both steps.
    """
    # Read here: only the caller's thread knows which server loop, if any, it runs for.
    loop = _server_loop()
    group = client_group(event.client_id)
    # The event's values, not the event: the render thread builds an event of its own
    # from them, and only for a row that some tab watches.
    row = (event._state.db, _field_values(event))
    _render_thread.submit(partial(_render_and_send, group, row, tz, loop))


_field_names = [field.attname for field in AuthEvent._meta.concrete_fields]
_field_values = operator.attrgetter(*_field_names)


def _render_and_send(group: str, row: tuple, tz: tzinfo, loop: asyncio.AbstractEventLoop | None) -> None:
    def message() -> dict:
        db, values = row
        return event_message(AuthEvent.from_db(db, _field_names, values), tz)

    # A send handed to a loop is tracked before this render ends: wait_for_publishes
    # never sees a gap between the two.
    try:
        if not _publish_to_redis(group, message):
            _send(group, message(), loop)
    except Exception:
        logger.exception("Live update to %s failed; open tabs will catch up on reconnect", group)
    finally:
        # The render reads the row's signals. Like a request, give the connection back
        # afterwards (to the pool, on PostgreSQL): a thread that lives as long as the
        # process would otherwise hold one pool connection for good, and keep a broken one
        # after the database restarts.
        close_old_connections()


class _RedisPublisher:
    """
    The render thread's plain Redis client, for the Redis pub/sub layer in use (one per
    layer), on one connection of its own: no pool to take it from and give it back to
    at every command (a third of a PUBSUB NUMSUB's CPU).
    """

    def __init__(self) -> None:
        self._layer = None
        self._client: redis.Redis | None = None
        self._prefix = ""

    def get(self, layer) -> tuple[redis.Redis, str] | None:
        if layer is not self._layer:  # first use, or the layers were set up again (tests do)
            self._layer, self._client = layer, None
            config = settings.CHANNEL_LAYERS[DEFAULT_CHANNEL_LAYER].get("CONFIG", {})
            hosts = decode_hosts(config.get("hosts"))
            if isinstance(layer, RedisPubSubChannelLayer) and len(hosts) == 1 and "address" in hosts[0]:
                options = {key: value for key, value in hosts[0].items() if key != "address"}
                self._client = redis.Redis.from_url(hosts[0]["address"], single_connection_client=True, **options)
                self._prefix = config.get("prefix", "asgi")
        return (self._client, self._prefix) if self._client is not None else None


_redis_publisher = _RedisPublisher()


def _publish_to_redis(group: str, message: Callable[[], dict]) -> bool:
    """
    PUBLISH `message()` to `group` from this thread, with a plain (blocking) Redis client,
    if any socket listens to the group; False, having sent nothing, when the channel layer
    is not Redis pub/sub on one host.

    What it buys: the render thread sends the row itself, one PUBLISH, with no hand-off to
    an event loop and no asyncio Redis client around it (about 0.5 ms of CPU an event
    less, docs/benchmarks.md #4). Under daphne too: Redis hands a pub/sub message to every
    subscribed connection, whichever process or loop published it. And when no tab
    watches the client (most clients, most of the time) the row is not rendered at all:
    its signals query and template cost more than the rest of the event's push. A tab
    that subscribes just after the check is in the case of any pub/sub message sent
    before it subscribed: its resync on connect and its periodic catch-up bring the row.

    What it relies on: the message is exactly what channels_redis's
    RedisPubSubChannelLayer.group_send publishes: the layer's own `serialize` (msgpack,
    and encryption when configured), on the channel `<prefix>__group__<group>`
    (RedisPubSubLoopLayer._get_group_channel_name, channels_redis 4.x). Several hosts
    would need the layer's private sharding: those go through group_send.
    tests/test_live.py has a real consumer behind the real layer receive it, on Redis.
    Call it from the render thread only: its client is not shared with other threads.
    """
    layer = get_channel_layer()
    publisher = _redis_publisher.get(layer)
    if publisher is None:
        return False
    client, prefix = publisher
    channel = f"{prefix}__group__{group}"
    [(_, listeners)] = client.pubsub_numsub(channel)
    if listeners:
        client.publish(channel, layer.serialize(message()))
    return True


def staff_access_changed(user_id: int) -> None:
    """Ask the user's open sockets to check their access again (role or membership changed)."""
    _send(staff_group(user_id), {"type": "access.changed"})


def client_access_changed(client_id: int) -> None:
    """Ask the sockets watching a client to check their access again (it moved agency)."""
    _send(client_group(client_id), {"type": "access.changed", "client_id": client_id})


def staff_session_ended(user_id: int, session_ref: str) -> None:
    """Close the sockets opened from a session that just logged out."""
    _send(staff_group(user_id), {"type": "session.ended", "session_ref": session_ref})
