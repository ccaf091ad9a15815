"""
A browser tab's Activity Log websocket, in process, on the configured channel layer
(in memory on SQLite, real Redis when REDIS_URL is set).

Waits are deadlines, not sleeps: a busy machine makes a test slower, never red. Only
`silent()`, which asserts that nothing arrives, has to pick a length of time.
"""

import json
import re

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client as HttpClient

from agencyhandy.asgi import application

QUIET = 0.3  # seconds to wait when asserting that nothing arrives
WITHIN = 15  # seconds: the deadline for something that must arrive


def _login(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


class Socket:
    """A browser tab's websocket, signed in as `user` (or anonymous)."""

    def __init__(self, client_id: int, http: HttpClient | None = None, query: str = "",
                 origin: str = "http://testserver", cookies: str = "") -> None:
        headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
        if http is not None:
            cookies = f"sessionid={http.cookies['sessionid'].value}" + (f"; {cookies}" if cookies else "")
        if cookies:
            headers.append((b"cookie", cookies.encode()))
        path = f"/ws/clients/{client_id}/activity/" + (f"?{query}" if query else "")
        self.comm = WebsocketCommunicator(application, path, headers=headers)

    async def open(self) -> bool:
        connected, _ = await self.comm.connect(timeout=WITHIN)
        return connected

    async def close_code(self) -> int:
        message = await self.comm.receive_output(timeout=WITHIN)
        assert message["type"] == "websocket.close", message
        # As a browser answers a close: the consumer then ends by itself, instead of being
        # left to the event loop's teardown to cancel (which once hung a run).
        await self.comm.disconnect(code=message.get("code", 1000), timeout=WITHIN)
        return message["code"]

    async def resync(self, after: int = 0) -> None:
        await self.comm.send_to(text_data=json.dumps({"type": "resync", "after": after}))

    async def rows(self) -> list[int]:
        html = await self.comm.receive_from(timeout=WITHIN)
        assert 'hx-swap-oob="afterbegin:#activity-rows"' in html
        return [int(i) for i in re.findall(r'<tr id="event-(\d+)"', html)]

    async def silent(self) -> bool:
        return await self.comm.receive_nothing(timeout=QUIET)

    async def disconnect(self) -> None:
        await self.comm.disconnect(timeout=WITHIN)


async def opened(client_id: int, user, query: str = "", cookies: str = "") -> Socket:
    socket = Socket(client_id, await sync_to_async(_login)(user), query, cookies=cookies)
    assert await socket.open()
    assert await socket.silent(), "a refused socket would have been closed"
    return socket


