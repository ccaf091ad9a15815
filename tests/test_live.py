"""
Live push over websockets: who may connect, what they receive and when, resync after a
dropped connection, and access that ends at once. Runs on the configured channel layer:
in-memory on SQLite, real Redis when REDIS_URL is set.
"""

import asyncio
import json
import logging

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client as HttpClient

from activitylog import consumers, live
from activitylog.models import EventType
from activitylog.services import auth_event_record
from agencyhandy.asgi import application
from tests.conftest import ALL_ROLES, LOG_ROLES, portal_login, portal_logout
from tests.sockets import WITHIN, Socket, _login, opened

pytestmark = pytest.mark.django_db(transaction=True)

record = database_sync_to_async(auth_event_record)


async def login_event(people, user=None, event_type=EventType.LOGIN, **extra):
    return await record(user=user or people.portal_user, event_type=event_type, **extra)


# Who may connect ---------------------------------------------------------------------


@pytest.mark.parametrize("role", LOG_ROLES)
async def test_log_roles_of_the_clients_agency_connect_and_receive_rows(acme, role):
    socket = await opened(acme.client.pk, acme.staff(role))
    event = await login_event(acme)
    assert await socket.rows() == [event.pk]
    await socket.disconnect()


async def test_an_employee_is_closed_with_4403(acme):
    socket = Socket(acme.client.pk, await sync_to_async(_login)(acme.employee))
    assert await socket.open()
    assert await socket.close_code() == 4403


@pytest.mark.parametrize("role", ALL_ROLES)
async def test_staff_of_another_agency_are_closed_with_4403(acme, globex, role):
    socket = Socket(acme.client.pk, await sync_to_async(_login)(globex.staff(role)))
    assert await socket.open()
    assert await socket.close_code() == 4403


@pytest.mark.parametrize("who", ["portal_user", "portal_member"])
async def test_portal_users_are_closed_with_4403(acme, who):
    socket = Socket(acme.client.pk, await sync_to_async(_login)(getattr(acme, who)))
    assert await socket.open()
    assert await socket.close_code() == 4403


async def test_anonymous_visitors_are_closed_with_4001_signed_out(acme):
    socket = Socket(acme.client.pk)
    assert await socket.open()
    assert await socket.close_code() == 4001


async def test_a_refused_socket_never_joins_the_clients_group(acme):
    socket = Socket(acme.client.pk, await sync_to_async(_login)(acme.employee))
    await socket.open()
    assert await socket.close_code() == 4403
    await login_event(acme)
    assert await socket.silent()


async def test_a_foreign_origin_cannot_open_the_socket(acme):
    socket = Socket(acme.client.pk, await sync_to_async(_login)(acme.manager), origin="https://evil.example")
    assert not await socket.open()


async def test_an_unknown_client_is_refused_like_a_foreign_one(acme):
    socket = Socket(987654321, await sync_to_async(_login)(acme.manager))
    assert await socket.open()
    assert await socket.close_code() == 4403


async def test_an_unknown_websocket_path_is_closed_with_4404(acme):
    comm = WebsocketCommunicator(application, "/ws/nothing/here/",
                                 headers=[(b"origin", b"http://testserver"), (b"host", b"testserver")])
    connected, _ = await comm.connect()
    assert connected
    message = await comm.receive_output(timeout=WITHIN)
    assert (message["type"], message["code"]) == ("websocket.close", 4404)


# What arrives, and when ----------------------------------------------------------------


async def test_only_committed_events_are_pushed(acme):
    socket = await opened(acme.client.pk, acme.manager)

    def rolled_back_login():
        with transaction.atomic():
            auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
            raise RuntimeError("the login request failed after recording")

    with pytest.raises(RuntimeError):
        await database_sync_to_async(rolled_back_login)()
    assert await socket.silent()

    event = await login_event(acme)
    assert await socket.rows() == [event.pk]
    await socket.disconnect()


async def test_other_clients_events_are_not_pushed(acme, globex):
    socket = await opened(acme.client.pk, acme.manager)
    await login_event(globex)
    assert await socket.silent()
    await socket.disconnect()


async def test_a_pushed_row_is_the_same_markup_as_the_page(acme):
    socket = await opened(acme.client.pk, acme.manager)
    event = await login_event(acme, ip="203.0.113.77")
    html = await socket.comm.receive_from(timeout=WITHIN)
    assert f'<tr id="event-{event.pk}" class="event event-login event-new"' in html
    assert "203.0.113.77" in html and "client@acme.test" in html
    assert '<time class="stamp" datetime="' in html
    await socket.disconnect()


async def test_each_event_is_rendered_once_however_many_tabs_are_open(acme, monkeypatch):
    renders = []
    real_render = live.render_row

    def counting_render(*args, **kwargs):
        renders.append(args[0].pk)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(live, "render_row", counting_render)
    sockets = [await opened(acme.client.pk, user) for user in (acme.manager, acme.admin, acme.super_admin)]
    event = await login_event(acme)
    for socket in sockets:
        assert await socket.rows() == [event.pk]
        await socket.disconnect()
    assert renders == [event.pk]


# Many tabs, one subscription per process (fanout.py) ------------------------------------


def _members_in_this_process(client_id: int) -> set:
    """The channels of this process (this event loop) in the client's group, from the layer's own table."""
    layer, group = get_channel_layer(), live.client_group(client_id)
    if isinstance(layer, RedisPubSubChannelLayer):
        loop_layer = layer._get_layer()
        return set(loop_layer.groups.get(loop_layer._get_group_channel_name(group), ()))
    return set(layer.groups.get(group, ()))


def _redis_subscribers(channel: str) -> int:
    [(_, count)] = redis.Redis.from_url(django_settings.REDIS_URL).pubsub_numsub(channel)
    return count


async def _eventually(condition) -> bool:
    """Whether `condition()` holds within WITHIN seconds (another connection's command may still be on its way)."""
    deadline = asyncio.get_running_loop().time() + WITHIN
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_tabs_on_one_client_share_one_subscription_and_each_gets_every_row_in_order(acme):
    # One of them reads times in another zone, so its rows are rendered for it alone.
    sockets = [await opened(acme.client.pk, user) for user in (acme.manager, acme.admin)]
    sockets.append(await opened(acme.client.pk, acme.super_admin, cookies="tz=utc"))
    assert len(_members_in_this_process(acme.client.pk)) == 1

    first, second = await login_event(acme), await login_event(acme, event_type=EventType.LOGOUT)
    for socket in sockets:
        assert await socket.rows() + await socket.rows() == [first.pk, second.pk]
        await socket.disconnect()


async def test_a_tab_that_closes_leaves_the_other_tabs_on_its_client_live(acme):
    leaving, staying = await opened(acme.client.pk, acme.manager), await opened(acme.client.pk, acme.admin)
    await leaving.disconnect()
    event = await login_event(acme)
    assert await staying.rows() == [event.pk]
    await staying.disconnect()


async def test_the_process_leaves_a_clients_group_with_its_last_tab_and_joins_again_with_the_next(acme):
    for socket in [await opened(acme.client.pk, acme.manager), await opened(acme.client.pk, acme.admin)]:
        await socket.disconnect()
    assert await _eventually(lambda: _members_in_this_process(acme.client.pk) == set())
    layer = get_channel_layer()
    if isinstance(layer, RedisPubSubChannelLayer):  # and Redis itself no longer sends this process the group
        channel = layer._get_layer()._get_group_channel_name(live.client_group(acme.client.pk))
        assert await _eventually(lambda: _redis_subscribers(channel) == 0)

    socket = await opened(acme.client.pk, acme.manager)
    event = await login_event(acme)
    assert await socket.rows() == [event.pk]
    await socket.disconnect()


async def test_live_rows_respect_the_event_type_filter(acme):
    socket = await opened(acme.client.pk, acme.manager, "type=login")
    await login_event(acme, event_type=EventType.LOGOUT)
    assert await socket.silent()
    event = await login_event(acme, event_type=EventType.LOGIN)
    assert await socket.rows() == [event.pk]
    await socket.disconnect()


async def test_live_rows_respect_the_user_filter(acme):
    socket = await opened(acme.client.pk, acme.manager, f"user={acme.portal_member.pk}")
    await login_event(acme, user=acme.portal_user)
    assert await socket.silent()
    event = await login_event(acme, user=acme.portal_member)
    assert await socket.rows() == [event.pk]
    await socket.disconnect()


async def test_live_rows_respect_a_date_range_in_the_past(acme):
    socket = await opened(acme.client.pk, acme.manager, "date_from=2020-01-01&date_to=2020-12-31")
    await login_event(acme)
    assert await socket.silent()
    await socket.disconnect()


async def test_a_bad_filter_closes_the_socket_with_4400(acme):
    socket = Socket(acme.client.pk, await sync_to_async(_login)(acme.manager), "type=nonsense")
    assert await socket.open()
    assert await socket.close_code() == 4400


# Nothing missed, nothing doubled -----------------------------------------------------


async def test_a_reconnecting_tab_gets_every_missed_row_exactly_once_in_order(acme):
    socket = await opened(acme.client.pk, acme.manager)
    shown = await login_event(acme)
    assert await socket.rows() == [shown.pk]
    await socket.disconnect()  # the connection drops

    missed = [await login_event(acme) for _ in range(3)]

    socket = await opened(acme.client.pk, acme.manager)
    await socket.resync(after=shown.pk)
    assert await socket.rows() == [e.pk for e in reversed(missed)]  # newest first, once each
    assert await socket.silent()
    await socket.disconnect()


async def test_resync_respects_the_filters(acme):
    socket = await opened(acme.client.pk, acme.manager, "type=logout")
    await login_event(acme, event_type=EventType.LOGIN)
    logout = await login_event(acme, event_type=EventType.LOGOUT)
    assert await socket.rows() == [logout.pk]
    await socket.resync(after=0)
    assert await socket.rows() == [logout.pk]
    await socket.disconnect()


async def test_a_tab_that_missed_too_much_is_told_to_reload(acme, monkeypatch):
    monkeypatch.setattr(consumers, "RESYNC_LIMIT", 2)
    for _ in range(3):
        await login_event(acme)
    socket = await opened(acme.client.pk, acme.manager)
    await socket.resync(after=0)
    html = await socket.comm.receive_from(timeout=WITHIN)
    assert 'id="activity-live-control"' in html and 'data-action="reload"' in html
    await socket.disconnect()


async def test_nothing_new_means_nothing_sent(acme):
    event = await login_event(acme)
    socket = await opened(acme.client.pk, acme.manager)
    await socket.resync(after=event.pk)
    assert await socket.silent()
    await socket.disconnect()


@pytest.mark.parametrize(
    "message",
    ["not json", json.dumps({"type": "resync"}), json.dumps({"type": "resync", "after": -1}),
     json.dumps({"type": "resync", "after": "5"}), json.dumps({"type": "resync", "after": True}),
     json.dumps({"type": "other", "after": 1}), json.dumps([1, 2]), "x" * 5000],
)
async def test_a_malformed_message_closes_the_socket_with_4400(acme, message):
    socket = await opened(acme.client.pk, acme.manager)
    await socket.comm.send_to(text_data=message)
    assert await socket.close_code() == 4400


# Access that ends, ends at once --------------------------------------------------------


async def test_logging_out_closes_that_sessions_sockets(acme):
    http = await sync_to_async(_login)(acme.manager)
    other_browser = await opened(acme.client.pk, acme.manager)
    socket = Socket(acme.client.pk, http)
    assert await socket.open()

    await sync_to_async(http.post)("/logout/")

    # "Session ended": the browser tries again with its cookie, and that handshake refuses it.
    assert await socket.close_code() == 4401
    assert await other_browser.silent()  # still signed in there
    await other_browser.disconnect()


async def _messages_to(user_id: int, action) -> list[str]:
    """
    The types of the live messages that `action` sends to `user_id`'s sockets: a listener
    joins their group, `action` runs, and a marker sent after everything it published
    ends the list.
    """
    layer = channel_layers[DEFAULT_CHANNEL_LAYER]
    channel = await layer.new_channel()
    await layer.group_add(live.staff_group(user_id), channel)
    try:
        await sync_to_async(action)()
        await sync_to_async(live.wait_for_publishes)(WITHIN)
        await layer.group_send(live.staff_group(user_id), {"type": "test.marker"})
        received = []
        while not received or received[-1] != "test.marker":
            received.append((await asyncio.wait_for(layer.receive(channel), WITHIN))["type"])
        return received[:-1]
    finally:
        await layer.group_discard(live.staff_group(user_id), channel)


async def test_a_staff_sign_out_tells_their_sockets_once(acme):
    http = await sync_to_async(_login)(acme.manager)
    assert await _messages_to(acme.manager.pk, lambda: http.post("/logout/")) == ["session.ended"]


async def test_a_portal_sign_out_tells_no_socket(acme):
    """Portal users have no Activity Log sockets: ending their session publishes nothing."""
    browser = HttpClient()
    assert (await sync_to_async(portal_login)(browser, acme.portal_user.email)).status_code == 302
    assert await _messages_to(acme.portal_user.pk, lambda: portal_logout(browser)) == []


@pytest.mark.parametrize(("change", "code"), [
    ("employee", 4403), ("remove", 4403), ("other_agency", 4403),
    ("deactivate", 4401),  # the session no longer signs anyone in
])
async def test_losing_access_closes_open_sockets(acme, globex, change, code):
    socket = await opened(acme.client.pk, acme.manager)

    def revoke():
        membership = acme.manager.staff_membership
        if change == "employee":
            membership.role = "employee"
            membership.save()
        elif change == "remove":
            membership.delete()
        elif change == "other_agency":
            membership.agency = globex.agency
            membership.save()
        else:
            acme.manager.is_active = False
            acme.manager.save()

    await database_sync_to_async(revoke)()
    assert await socket.close_code() == code


async def test_a_promotion_keeps_the_socket_open(acme):
    socket = await opened(acme.client.pk, acme.manager)

    def promote():
        membership = acme.manager.staff_membership
        membership.role = "admin"
        membership.save()

    await database_sync_to_async(promote)()
    assert await socket.silent()
    event = await login_event(acme)
    assert await socket.rows() == [event.pk]
    await socket.disconnect()


# Which event loop a publish goes to ------------------------------------------------------


async def test_sync_code_run_by_the_server_publishes_on_the_servers_loop():
    """live._server_loop leans on asgiref's private parts; an asgiref upgrade that changes them fails here."""
    assert await sync_to_async(live._server_loop)() is asyncio.get_running_loop(), (
        "asgiref no longer marks the threads that sync_to_async runs code in with "
        "SyncToAsync.threadlocal.main_event_loop and .main_event_loop_pid, which live._server_loop reads: "
        "live rows would be published on another loop. Find the server's loop another way."
    )


# When the channel layer is down ---------------------------------------------------------


# Nothing listens at these addresses. The Redis list layer sends from an event loop; on
# Redis pub/sub the render thread PUBLISHes itself: either failure is logged, and the login stands.
_LAYERS_THAT_ARE_DOWN = {
    "redis list layer": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                         "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}},
    "redis pub/sub": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                      "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}],
                                 "prefix": "agencyhandy.down"}},
}


@pytest.mark.parametrize("layer", _LAYERS_THAT_ARE_DOWN.values(), ids=_LAYERS_THAT_ARE_DOWN.keys())
def test_logins_are_recorded_when_the_channel_layer_is_down(client, acme, settings, caplog, layer):
    settings.CHANNEL_LAYERS = {"default": layer}
    channel_layers.backends.clear()
    try:
        with caplog.at_level(logging.ERROR, logger="activitylog.live"):
            response = client.post("/portal/login/", {"username": "client@acme.test", "password": "correct-horse-battery"})
            live.wait_for_publishes()
    finally:
        channel_layers.backends.clear()

    assert response.status_code == 302
    from activitylog.models import AuthEvent

    assert AuthEvent.objects.filter(event_type=EventType.LOGIN).count() == 1
    assert "Live update to activity.client." in caplog.text


def test_publishing_from_plain_sync_code_reaches_the_group(acme):
    """As from a management command: no event loop in sight."""
    from channels.layers import get_channel_layer
    from django.db import connections

    layer = get_channel_layer()

    def record_as_a_command_does():
        # A plain thread, not sync_to_async's: no server loop to publish on.
        try:
            event = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
            # Sent from the publisher's own loop: wait until it is, as a command does at exit.
            # The in-memory layer's queues belong to one loop; a receive already waiting in
            # another loop would not be woken by the put.
            live.wait_for_publishes(WITHIN)
            return event
        finally:
            connections.close_all()

    async def listen():
        # One loop for the listening side: the pub/sub layer keeps its channels per loop.
        channel = await layer.new_channel()
        await layer.group_add(live.client_group(acme.client.pk), channel)
        event = await asyncio.get_running_loop().run_in_executor(None, record_as_a_command_does)
        return event, await asyncio.wait_for(layer.receive(channel), WITHIN)

    event, message = asyncio.run(listen())
    assert (message["type"], message["id"], message["event_type"]) == ("activity.event", event.pk, "login")
    assert f'id="event-{event.pk}"' in message["frame"]


def test_the_render_thread_publishes_what_the_redis_layer_itself_would_send(acme):
    """live._publish_to_redis copies channels_redis's group_send: the real layer must take it as its own."""
    layer = get_channel_layer()
    group = live.client_group(acme.client.pk)
    message = {"type": "activity.event", "id": 7, "html": "<tr>Zürich</tr>", "occurred_at": 1.5, "ip": None}

    async def listen():
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        # A plain thread, as the render thread is: no event loop in it.
        sent = await asyncio.get_running_loop().run_in_executor(None, live._publish_to_redis, group, lambda: message)
        return sent, (await asyncio.wait_for(layer.receive(channel), WITHIN)) if sent else None

    sent, received = asyncio.run(listen())
    if isinstance(layer, RedisPubSubChannelLayer):
        assert sent and received == message
    else:  # the in-memory layer delivers in its own loop only: group_send does it
        assert not sent


def test_a_row_nobody_watches_is_not_rendered_on_redis(acme):
    """With no socket in the client's group the render (its query, its template) is skipped."""
    rendered = []
    sent = live._publish_to_redis(live.client_group(acme.client.pk), lambda: rendered.append("row") or {})
    redis_pubsub = isinstance(get_channel_layer(), RedisPubSubChannelLayer)
    assert (sent, rendered) == ((True, []) if redis_pubsub else (False, []))


async def test_a_live_row_reaches_the_consumer_without_an_event_loop_on_the_way(acme, monkeypatch):
    """On Redis pub/sub the row is one PUBLISH from the render thread; any other layer goes through a loop."""
    through_a_loop = []
    send = live._send
    monkeypatch.setattr(live, "_send", lambda group, *args: through_a_loop.append(group) or send(group, *args))
    socket = await opened(acme.client.pk, acme.manager)

    event = await login_event(acme)

    assert await socket.rows() == [event.pk]
    redis_pubsub = isinstance(channel_layers[DEFAULT_CHANNEL_LAYER], RedisPubSubChannelLayer)
    assert through_a_loop == ([] if redis_pubsub else [live.client_group(acme.client.pk)])
    await socket.disconnect()


async def test_a_resynced_expiry_row_names_the_login_it_closes_like_the_page(acme):
    from activitylog.models import SessionEndReason

    login = await login_event(acme, session_ref="c" * 64)
    await login_event(acme, event_type=EventType.SESSION_EXPIRED, session_ref="c" * 64,
                      reason=SessionEndReason.IDLE_TIMEOUT)
    socket = await opened(acme.client.pk, acme.manager)
    await socket.resync(after=0)
    html = await socket.comm.receive_from(timeout=WITHIN)
    assert f'Session from <a href="#event-{login.pk}">' in html
    await socket.disconnect()


# Redis pub/sub delivers at most once -----------------------------------------------------


async def _resynced(acme):
    """A tab that has resynced, as the browser does on every (re)connect, and seen the answer."""
    earlier = await login_event(acme)
    socket = await opened(acme.client.pk, acme.manager)
    await socket.resync(after=0)
    assert await socket.rows() == [earlier.pk]
    return socket


async def test_a_push_lost_on_the_way_reaches_the_tab_at_the_next_recheck(acme, settings, monkeypatch):
    settings.ACTIVITYLOG_SOCKET_RECHECK_SECONDS = 0.2
    socket = await _resynced(acme)
    # A message published while a server process reconnects to Redis never arrives.
    monkeypatch.setattr(live, "auth_event_publish", lambda event, tz: None)
    lost = await login_event(acme)
    assert await socket.rows() == [lost.pk]
    await socket.disconnect()


async def test_a_row_pushed_live_is_not_sent_again_by_the_catch_up(acme, settings):
    settings.ACTIVITYLOG_SOCKET_RECHECK_SECONDS = 0.25
    socket = await _resynced(acme)
    pushed = await login_event(acme)
    await database_sync_to_async(live.wait_for_publishes)()
    assert await socket.rows() == [pushed.pk]
    assert await socket.comm.receive_nothing(timeout=1.5)  # about six rechecks, and no second copy
    await socket.disconnect()
