"""
The open tabs' websockets, as the browser's live.js holds them: signed in with a staff
session cookie, sending its page's Origin, no pings of its own (browsers send none), a
resync on open. Each notes when every row arrives, and whether it closed before the end.
"""

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from soak.data import Tab

ROW_ID = re.compile(r'<tr id="event-(\d+)"')


@dataclass
class OpenTab:
    tab: Tab
    base_url: str
    client_id: int
    arrivals: dict[int, list[float]] = field(default_factory=dict)  # event id -> arrival times (epoch s)
    reloads: int = 0  # "reload your list": the server thought the tab had missed too much
    closed: str | None = None  # how it closed, if the server (or the network) closed it
    ws: ClientConnection | None = None
    _closing: bool = False
    _opened_at: float = 0.0

    async def open(self, session_cookie: str, after: int) -> None:
        query = f"?{urlencode({'type': self.tab.event_type})}" if self.tab.event_type else ""
        self.ws = await connect(
            f"{self.base_url.replace('http://', 'ws://', 1)}/ws/clients/{self.client_id}/activity/{query}",
            origin=self.base_url, additional_headers={"Cookie": f"sessionid={session_cookie}"},
            ping_interval=None, proxy=None, open_timeout=30, max_size=2**20,
        )
        self._opened_at = time.monotonic()
        await self.ws.send(json.dumps({"type": "resync", "after": after}))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                now = time.time()
                if 'data-action="reload"' in frame:
                    self.reloads += 1
                for match in ROW_ID.finditer(frame):
                    self.arrivals.setdefault(int(match.group(1)), []).append(now)
        except ConnectionClosed:
            pass
        if not self._closing:
            code = self.ws.close_code
            self.closed = f"closed with {code} after {time.monotonic() - self._opened_at:.1f} s"

    async def close(self) -> None:
        self._closing = True
        await self.ws.close()
        await self._reader
