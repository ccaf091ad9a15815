"""
An open Activity Log socket outlives nothing that ends access.

Each path that ends access is tried on a socket that is already open. Paths that send a
signal close the socket at once; to prove it, the periodic re-check is set far away.
Paths that send nothing (a raw `QuerySet.update()`, an expiry) are closed by the periodic
re-check, which these tests set short. Either way, the old agency never receives a row.
"""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.contrib.sessions.models import Session
from django.db import IntegrityError, connection, transaction
from django.test import Client as HttpClient
from django.utils import timezone

from activitylog.models import EventType, PortalSession
from activitylog.services import auth_event_record
from clients import db_guards
from clients.models import Client, Role, StaffMembership, User
from tests.conftest import PASSWORD, portal_login
from tests.servers import redis_available, server_redis
from tests.sockets import WITHIN, Socket, _login, opened
from tests.subprocesses import manage

pytestmark = pytest.mark.django_db(transaction=True)

SESSION_ENDED = 4401  # the browser retries with its cookie; the handshake then decides
FORBIDDEN = 4403

record = database_sync_to_async(auth_event_record)
db = database_sync_to_async


@pytest.fixture
def only_instant_closes(settings):
    """The periodic re-check is an hour away: a close within the test came from the change itself."""
    settings.ACTIVITYLOG_SOCKET_RECHECK_SECONDS = 3600


@pytest.fixture
def quick_recheck(settings):
    settings.ACTIVITYLOG_SOCKET_RECHECK_SECONDS = 0.2


# Closed at once, by the change itself ---------------------------------------------------


async def test_an_admin_changing_the_staff_users_password_closes_their_sockets(acme, only_instant_closes):
    socket = await opened(acme.client.pk, acme.manager)

    def change_password():
        user = User.objects.get(pk=acme.manager.pk)
        user.set_password("a-brand-new-password-42")
        user.save()

    await db(change_password)()
    assert await socket.close_code() == SESSION_ENDED


async def test_a_staff_user_changing_their_own_password_keeps_live_updates_under_the_new_session(
        acme, only_instant_closes):
    from django.contrib.auth import update_session_auth_hash
    from django.contrib.sessions.backends.db import SessionStore

    http = await sync_to_async(_login)(acme.manager)
    socket = Socket(acme.client.pk, http)
    assert await socket.open()

    @transaction.atomic
    def change_own_password() -> str:
        # What Django's PasswordChangeView does: the new hash goes into this session, under a new key.
        user = User.objects.get(pk=acme.manager.pk)
        user.set_password("a-brand-new-password-42")
        user.save()
        request = type("Request", (), {"session": SessionStore(http.cookies["sessionid"].value), "user": user})()
        update_session_auth_hash(request, user)
        request.session.save()
        return request.session.session_key

    new_key = await db(change_own_password)()
    assert await socket.close_code() == SESSION_ENDED
    http.cookies["sessionid"] = new_key  # the browser holds the new cookie and reconnects
    again = Socket(acme.client.pk, http)
    assert await again.open() and await again.silent()
    event = await record(user=acme.portal_user, event_type=EventType.LOGIN)
    assert await again.rows() == [event.pk]
    await again.disconnect()


@pytest.mark.parametrize("how", ["one", "queryset"])
async def test_deleting_the_staff_users_sessions_closes_their_sockets(acme, only_instant_closes, how):
    http = await sync_to_async(_login)(acme.manager)
    socket = Socket(acme.client.pk, http)
    assert await socket.open()

    def delete_sessions():
        sessions = Session.objects.filter(session_key=http.cookies["sessionid"].value)
        if how == "one":
            sessions.get().delete()
        else:
            sessions.delete()  # as an admin script "sign everyone out" would

    await db(delete_sessions)()
    assert await socket.close_code() == SESSION_ENDED


@pytest.mark.parametrize("update_fields", [None, ["agency"], ["agency_id"]], ids=["save", "by-name", "by-attname"])
async def test_moving_the_client_to_another_agency_closes_the_old_agencys_sockets(
    acme, globex, only_instant_closes, update_fields
):
    old_manager = await opened(acme.client.pk, acme.manager)

    def move():
        client = Client.objects.get(pk=acme.client.pk)
        client.agency = globex.agency
        client.save(update_fields=update_fields)

    await db(move)()
    assert await old_manager.close_code() == FORBIDDEN


async def test_other_client_changes_do_not_close_sockets(acme, only_instant_closes):
    socket = await opened(acme.client.pk, acme.manager)

    def rename():
        client = Client.objects.get(pk=acme.client.pk)
        client.name = "Acme Renamed"
        client.save()

    await db(rename)()
    assert await socket.silent()
    await socket.disconnect()


async def test_a_client_moved_behind_the_orms_back_sends_the_old_agency_no_new_row(acme, globex, only_instant_closes):
    old_manager = await opened(acme.client.pk, acme.manager)
    await db(lambda: Client.objects.filter(pk=acme.client.pk).update(agency=globex.agency))()

    # Nothing announced the move, and the socket is not closed yet; the row still stays home.
    await record(user=acme.portal_user, event_type=EventType.LOGIN)
    assert await old_manager.silent()
    await old_manager.disconnect()


# Closed by the periodic re-check, whatever the path -------------------------------------


@pytest.mark.parametrize(("change", "code"), [
    ("demote", FORBIDDEN), ("remove", FORBIDDEN), ("other_agency", FORBIDDEN), ("deactivate", SESSION_ENDED),
])
async def test_access_ended_by_a_raw_update_closes_sockets_at_the_next_recheck(acme, globex, quick_recheck, change,
                                                                              code):
    socket = await opened(acme.client.pk, acme.manager)

    def revoke_without_signals():
        memberships = StaffMembership.objects.filter(user=acme.manager)
        if change == "demote":
            memberships.update(role=Role.EMPLOYEE)
        elif change == "remove":
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM clients_staffmembership WHERE user_id = %s", [acme.manager.pk])
        elif change == "deactivate":
            User.objects.filter(pk=acme.manager.pk).update(is_active=False)
        else:
            memberships.update(agency=globex.agency)

    await db(revoke_without_signals)()
    assert await socket.close_code() == code


async def test_an_expired_staff_session_closes_its_sockets_at_the_next_recheck(acme, quick_recheck):
    http = await sync_to_async(_login)(acme.manager)
    socket = Socket(acme.client.pk, http)
    assert await socket.open()

    await db(lambda: Session.objects.filter(session_key=http.cookies["sessionid"].value)
             .update(expire_date=timezone.now() - timedelta(seconds=1)))()
    assert await socket.close_code() == SESSION_ENDED


async def test_a_session_deleted_by_raw_sql_closes_its_sockets_at_the_next_recheck(acme, quick_recheck):
    http = await sync_to_async(_login)(acme.manager)
    socket = Socket(acme.client.pk, http)
    assert await socket.open()

    def delete_raw():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM django_session WHERE session_key = %s", [http.cookies["sessionid"].value])

    await db(delete_raw)()
    assert await socket.close_code() == SESSION_ENDED


async def test_the_recheck_keeps_a_socket_whose_access_still_holds(acme, quick_recheck):
    socket = await opened(acme.client.pk, acme.manager)
    for _ in range(3):
        assert await socket.silent()  # several re-checks pass meanwhile
    event = await record(user=acme.portal_user, event_type=EventType.LOGIN)
    assert await socket.rows() == [event.pk]
    await socket.disconnect()


# Staff and portal accounts are exclusive ------------------------------------------------


def test_the_database_refuses_a_staff_membership_for_a_portal_user(acme):
    with pytest.raises(IntegrityError), transaction.atomic():
        StaffMembership.objects.create(user=acme.portal_user, agency=acme.agency, role=Role.MANAGER)
    with pytest.raises(IntegrityError), transaction.atomic():
        # Even moved onto a portal user from another account.
        StaffMembership.objects.filter(user=acme.employee).update(user=acme.portal_user)


def test_the_database_refuses_a_client_for_a_staff_user(acme):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=acme.manager.pk).update(client=acme.client)
    assert User.objects.get(pk=acme.manager.pk).client_id is None


def test_a_staff_user_who_leaves_the_agency_can_become_a_portal_user(acme):
    StaffMembership.objects.filter(user=acme.manager).delete()
    User.objects.filter(pk=acme.manager.pk).update(client=acme.client)
    assert User.objects.get(pk=acme.manager.pk).client_id == acme.client.pk


@pytest.fixture
def staff_and_portal_user(acme):
    """A legacy row from before the database refused it: a Manager who is also a portal user."""
    with connection.cursor() as cursor:
        for statement in db_guards.remove_sql(connection.vendor):
            cursor.execute(statement)
        User.objects.filter(pk=acme.manager.pk).update(client=acme.client)
        for statement in db_guards.install_sql(connection.vendor):
            cursor.execute(statement)
    return User.objects.get(pk=acme.manager.pk)


async def test_a_staff_and_portal_account_is_refused_by_the_socket(acme, staff_and_portal_user):
    socket = Socket(acme.client.pk, await sync_to_async(_login)(staff_and_portal_user))
    assert await socket.open()
    assert await socket.close_code() == FORBIDDEN


def test_a_staff_and_portal_account_is_refused_by_every_page(client, acme, staff_and_portal_user):
    client.force_login(staff_and_portal_user)
    for path in (f"/clients/{acme.client.pk}/activity/", f"/clients/{acme.client.pk}/activity/export.csv",
                 f"/clients/{acme.client.pk}/", "/clients/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/portal/", path


# Short-lived processes deliver what they publish ------------------------------------------


@pytest.fixture
def redis_layer(settings):
    """The Redis channel layer in this process too, so another process can reach its sockets."""
    url, prefix = server_redis()
    if not redis_available():
        pytest.fail(f"Redis is not reachable at {url}: publishes across processes need it")
    # The production backend (agencyhandy/settings.py): the command's process publishes with it.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [url], "prefix": prefix}}}
    channel_layers.backends.clear()
    yield {"REDIS_URL": url, "REDIS_PREFIX": prefix}
    channel_layers.backends.clear()


async def test_an_expiry_recorded_by_cron_always_reaches_an_open_tab(acme, redis_layer):
    """The command exits right after its commit; its publish must not die with it. Three in a row."""
    socket = await opened(acme.client.pk, acme.manager)
    for attempt in range(3):
        await db(lambda: portal_login(HttpClient(), "client@acme.test", PASSWORD))()
        await socket.rows()  # the login
        await db(lambda: PortalSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1)))()

        result = await sync_to_async(manage)("record_session_expiries", env_extra=redis_layer)
        assert result.returncode == 0, result.stderr
        html = await socket.comm.receive_from(timeout=WITHIN)
        assert "badge-session_expired" in html, f"attempt {attempt + 1}"
    await socket.disconnect()
