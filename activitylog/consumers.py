"""
Channel layer → the open tab. One websocket per open Activity Log tab.

Protocol (the browser side is static/js/live.js):
- connect to /ws/clients/<id>/activity/?<the tab's filters>; access is checked with the
  same function as the page, and anyone else is closed before joining a group: 4001 when
  nobody is signed in, 4403 for a user who may not read this log;
- the browser sends {"type": "resync", "after": <newest event id it shows>} on every
  (re)connect; the server, already in the group, answers with the rows after that id,
  or tells the browser to reload the list when too many were missed;
- new events arrive as htmx out-of-band swaps that prepend rows; the browser drops rows
  it already shows, by element id.

Access is checked at the handshake and then again for as long as the socket lives:
- at once, when something announces a change (a sign-out, a role or membership change,
  a deactivation, a password change, a deleted session, the client moving agency);
- every ACTIVITYLOG_SOCKET_RECHECK_SECONDS (and at the moment the session expires), so
  that a change nothing announced (a raw `QuerySet.update()`, SQL from a shell) ends
  access too: revocation does not depend on finding every path that revokes.
Rows of another agency are never sent, whatever the timing: each event names the agency
that owned its client when it was recorded.
"""

import asyncio
import json
import logging
import random

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404, QueryDict

from activitylog import access, fanout, live
from activitylog.access import client_for_activity_log
from activitylog.forms import ActivityFilterForm
from activitylog.selectors import EventFilters, auth_event_ids_since, auth_events_by_id, auth_events_since
from activitylog.services import session_ref_for
from clients.clock import ZONE_COOKIE, zone_choice

logger = logging.getLogger("activitylog.live")

# The session behind the socket ended or changed (sign-out, new key after a password
# change): the browser opens a new socket, whose handshake decides with its current cookie.
CLOSE_SESSION_ENDED = 4401
# Nobody is signed in (the handshake after a sign-out, or an expired session): the tab
# offers "Sign in again" instead of retrying.
CLOSE_SIGNED_OUT = 4001
CLOSE_FORBIDDEN = 4403
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404
CLOSE_TRY_AGAIN_LATER = 1013

_CLOSE_CODES = {
    access.SocketVerdict.ALLOWED: None,
    access.SocketVerdict.SESSION_ENDED: CLOSE_SESSION_ENDED,
    access.SocketVerdict.FORBIDDEN: CLOSE_FORBIDDEN,
}
# A tab that missed more than this reloads its list instead of receiving the rows.
RESYNC_LIMIT = 100
# A recheck's catch-up compares at most this many recent ids with what was pushed.
CATCH_UP_LIMIT = 1000
MAX_MESSAGE_BYTES = 1024


class ActivityLogConsumer(AsyncWebsocketConsumer):
    client_id: int
    filters: EventFilters

    async def connect(self) -> None:
        self.groups_joined: list[str] = []
        self.watching: int | None = None
        self.tasks: set[asyncio.Task] = set()
        user = self.scope.get("user")
        client_id = self.scope["url_route"]["kwargs"]["client_id"]
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_SIGNED_OUT)
            return
        try:
            client = await database_sync_to_async(client_for_activity_log)(user, client_id)
        except (PermissionDenied, Http404):
            await self._refuse(CLOSE_FORBIDDEN)
            return
        form = await database_sync_to_async(self._filter_form)(client)
        if not form.is_valid():
            await self._refuse(CLOSE_BAD_REQUEST)
            return

        self.client, self.client_id, self.agency_id, self.user_id = client, client.pk, client.agency_id, user.pk
        # The zone the viewer reads times in, from the same cookie as the pages. Published
        # rows are spelled in the agency's zone; a viewer who chose another one gets each
        # row rendered again for them (one primary-key read).
        zone = zone_choice(self.scope.get("cookies", {}).get(ZONE_COOKIE), agency_zone=client.agency.time_zone)
        self.tz = zone.tzinfo
        self.renders_own_rows = zone.name != client.agency.time_zone
        self.filters = await database_sync_to_async(form.filters)(self.tz)  # a search by email reads users
        self.matches = self.filters.matcher(self.tz)
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        self.session_ref = session_ref_for(self.session_key)
        # Rows rendered for this socket alone go out one at a time, in the order their events came.
        self.own_rows = asyncio.Lock()
        # The staff user's own messages, which are rare, come through this socket's channel.
        group = live.staff_group(user.pk)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)
        await self.accept()
        # The client's events come through this process's fan-out (fanout.py). Watch before
        # the browser's resync runs (it is handled once connect returns), so nothing falls
        # between the two; and after accept, because a push may come at once.
        await fanout.watch(client.pk, self)
        self.watching = client.pk
        self.recheck = asyncio.create_task(self._recheck_access_periodically())

    async def dispatch(self, message: dict) -> None:
        """
        Channels' own dispatch, without the `aclose_old_connections()` it awaits before every
        handler. That is a hop to the one thread that runs database work, for every message
        on every socket (docs/benchmarks.md, #6). This consumer reaches the database only
        through database_sync_to_async, which closes old connections itself, before and after.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _refuse(self, code: int) -> None:
        # Accept first: a close before accept is an HTTP 403 and the browser never sees why.
        await self.accept()
        await self.close(code=code)

    def _filter_form(self, client) -> ActivityFilterForm:
        query = QueryDict(self.scope.get("query_string", b"").decode("latin-1"))
        return ActivityFilterForm(query, client=client)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "recheck", None) is not None:
            self.recheck.cancel()
        for task in getattr(self, "tasks", ()):
            task.cancel()
        if getattr(self, "watching", None) is not None:
            fanout.unwatch(self.watching, self)
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    # Browser → server --------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        try:
            message = json.loads(text_data)
            after = message["after"] if message.get("type") == "resync" else None
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                raise ValueError
        except (ValueError, TypeError, KeyError, AttributeError):
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        await self._resync(after)

    async def _resync(self, after: int) -> None:
        rows, newest, too_many = await database_sync_to_async(self._missed_rows)(after)
        if too_many:
            await self._ask_for_reload()  # the reloaded tab reconnects and resyncs afresh
        elif rows:
            await self._send_rows(rows)
        # The tab now has everything up to `after` and what was just sent; pushes add to it.
        self.complete_up_to = newest
        self.pushed: set[int] = set()  # ids pushed live since then
        self.suspects: set[int] = set()  # ids the last catch-up found neither sent nor pushed

    async def _ask_for_reload(self) -> None:
        await self.send(text_data='<div id="activity-live-control" hx-swap-oob="true" data-action="reload"></div>')

    def _missed_rows(self, after: int) -> tuple[list[str], int, bool]:
        """The rows after event `after`, the newest id among them, and whether they were too many to send."""
        missed = auth_events_since(client=self.client, filters=self.filters, tz=self.tz,
                                   after_id=after, limit=RESYNC_LIMIT + 1)
        newest = max((event.pk for event in missed), default=after)
        if len(missed) > RESYNC_LIMIT:
            return [], newest, True
        return live.render_rows(missed, self.tz), newest, False

    async def _send_rows(self, rows: list[str]) -> None:
        await self.send(text_data=live.rows_frame(rows))

    # Channel layer → browser -------------------------------------------------------------

    async def on_client_message(self, message: dict, fields: dict | None) -> None:
        """A message of the watched client's group, from this process's fan-out (fanout.py)."""
        if message["type"] == "activity.event":
            await self._push(message, fields)
        elif message["type"] == "access.changed":  # the client moved agency
            self._in_background(self._close_unless_still_allowed())

    async def _push(self, message: dict, fields: dict) -> None:
        # A client that moved to another agency is no longer this tab's business, even
        # before the access check that the move set off has closed the socket.
        if message.get("agency_id") != self.agency_id or not self.matches(fields):
            return
        if self.renders_own_rows:  # a database read: not while the process's other sockets wait
            self._in_background(self._push_own_row(message["id"]))
            return
        await self.send(text_data=message["frame"])
        if hasattr(self, "pushed"):
            self.pushed.add(message["id"])

    async def _push_own_row(self, event_id: int) -> None:
        async with self.own_rows:
            await self._send_rows(await database_sync_to_async(self._rows_by_id)([event_id]))
        if hasattr(self, "pushed"):
            self.pushed.add(event_id)

    def _in_background(self, work) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A row not pushed is sent by the next catch-up; an access check that failed is
            # made again by the next periodic recheck.
            logger.warning("Live work for an activity socket failed", exc_info=task.exception())

    def _rows_by_id(self, ids: list[int]) -> list[str]:
        """These events' rows, rendered for this socket (its viewer's zone, its catch-up)."""
        return live.render_rows(auth_events_by_id(client=self.client, ids=ids), self.tz)

    async def access_changed(self, message: dict) -> None:
        await self._close_unless_still_allowed()

    async def _close_unless_still_allowed(self) -> bool:
        code = await database_sync_to_async(self._close_code_if_not_allowed)()
        if code is None:
            return True
        await self.close(code=code)
        return False

    def _close_code_if_not_allowed(self) -> int | None:
        """The handshake's check, again, from fresh rows: the session, then the user's access."""
        verdict = access.socket_verdict(
            session_key=self.session_key, user_id=self.user_id, client_id=self.client_id, agency_id=self.agency_id
        )
        return _CLOSE_CODES[verdict]

    async def _recheck_access_periodically(self) -> None:
        while True:
            # Jittered, so that the tabs that reconnected together after a restart do not
            # all query the database in the same instant, forever after.
            await asyncio.sleep(settings.ACTIVITYLOG_SOCKET_RECHECK_SECONDS * random.uniform(0.8, 1.0))
            try:
                if not await self._close_unless_still_allowed():
                    return
                await self._catch_up()
            except DatabaseError:
                # Access cannot be confirmed, so it is not assumed: "try again later". The
                # tab reconnects, and its handshake checks everything afresh.
                logger.warning("Closing an activity socket: its access could not be checked", exc_info=True)
                await self.close(code=CLOSE_TRY_AGAIN_LATER)
                return

    async def _catch_up(self) -> None:
        """
        Send what a push missed. Redis pub/sub delivers at most once: a message published
        while this process was reconnecting to Redis, or before its subscription took,
        never arrives. So at each recheck the ids recorded since the tab was last known
        complete (one primary-key range read) are compared with what was pushed, and a
        row still missing at the next recheck is sent (the browser drops any duplicate).
        """
        if not hasattr(self, "complete_up_to"):  # the browser has not resynced yet
            return
        ids = await database_sync_to_async(auth_event_ids_since)(
            client=self.client, filters=self.filters, tz=self.tz, after_id=self.complete_up_to, limit=CATCH_UP_LIMIT
        )
        missed = [event_id for event_id in ids if event_id not in self.pushed]
        # A row is sent only once it has been missing for a whole interval: one just
        # committed may still be on its way.
        overdue = [event_id for event_id in missed if event_id in self.suspects]
        if len(overdue) > RESYNC_LIMIT:
            await self._ask_for_reload()
        elif overdue:
            await self._send_rows(await database_sync_to_async(self._rows_by_id)(overdue))
        self.suspects = set(missed) - set(overdue)
        if ids:
            # Ids follow the order of recording per client: the tab now has every event up
            # to the last one read, except the suspects.
            self.complete_up_to = min(self.suspects) - 1 if self.suspects else ids[-1]
            self.pushed = {event_id for event_id in self.pushed if event_id > self.complete_up_to}

    async def session_ended(self, message: dict) -> None:
        if message.get("session_ref") == self.session_ref:
            await self.close(code=CLOSE_SESSION_ENDED)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other websocket path: a clear close code instead of a server error."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)
