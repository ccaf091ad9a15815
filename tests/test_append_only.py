"""No layer lets an activity log entry change or disappear: model, queryset, admin, database."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError

from activitylog.models import AppendOnlyError, AuthEvent, EventType
from activitylog.services import auth_event_record
from clients.models import Client


@pytest.fixture
def event(acme) -> AuthEvent:
    return auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, ip="203.0.113.1")


def test_saving_a_changed_event_raises(event):
    event.ip = "10.0.0.1"
    with pytest.raises(AppendOnlyError):
        event.save()


def test_deleting_an_event_raises(event):
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_queryset_update_and_delete_raise(event):
    with pytest.raises(AppendOnlyError):
        AuthEvent.objects.filter(pk=event.pk).update(ip="10.0.0.1")
    with pytest.raises(AppendOnlyError):
        AuthEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuthEvent.objects.bulk_update([event], ["ip"])
    assert AuthEvent.objects.get(pk=event.pk).ip == "203.0.113.1"


def test_bulk_create_cannot_bypass_the_recording_service(event):
    with pytest.raises(AppendOnlyError):
        AuthEvent.objects.bulk_create([AuthEvent(client=event.client)])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE activitylog_authevent SET ip = '10.0.0.1'",
        "UPDATE activitylog_authevent SET email = 'someone@else.test' WHERE id = {id}",
        "DELETE FROM activitylog_authevent WHERE id = {id}",
        "DELETE FROM activitylog_authevent",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(event, statement):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement.format(id=event.pk))
    assert AuthEvent.objects.filter(pk=event.pk, ip="203.0.113.1").exists()


@pytest.mark.django_db(transaction=True)  # committed rows, as in production
def test_postgresql_refuses_truncate(event):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE activitylog_authevent CASCADE")
    assert AuthEvent.objects.filter(pk=event.pk).exists()


def test_a_client_with_history_cannot_be_deleted_and_says_to_archive(event, acme):
    with pytest.raises(ProtectedError, match="Archive it instead"):
        acme.client.delete()
    with pytest.raises(ProtectedError):
        Client.objects.filter(pk=acme.client.pk).delete()
    assert AuthEvent.objects.filter(pk=event.pk).exists()
    assert Client.objects.filter(pk=acme.client.pk).exists()


def test_a_portal_user_with_history_cannot_be_deleted(event, acme):
    with pytest.raises(ProtectedError):
        acme.portal_user.delete()
    assert AuthEvent.objects.filter(pk=event.pk).exists()
