"""Django admin: platform superusers inspect events read-only; nobody edits or deletes them."""

import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activitylog.models import AuthEvent, EventType
from activitylog.services import auth_event_record
from clients.clock import spell, spell_utc
from clients.models import Client

CHANGELIST = "/admin/activitylog/authevent/"


@pytest.fixture
def events(acme, globex):
    return [
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, ip="203.0.113.10"),
        auth_event_record(user=globex.portal_user, event_type=EventType.LOGIN, ip="198.51.100.20"),
    ]


@pytest.fixture
def superuser(client, root):
    client.force_login(root)
    return client


def test_a_superuser_sees_every_agencys_events(superuser, events):
    html = superuser.get(CHANGELIST).content.decode()
    assert "client@acme.test" in html and "client@globex.test" in html


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("q=Acme+Client", "client@acme.test", "client@globex.test"),
        ("q=client@globex.test", "client@globex.test", "client@acme.test"),
        ("q=hello@acme-client.test", "client@acme.test", "client@globex.test"),
        ("q=198.51.100.20", "client@globex.test", "client@acme.test"),
        ("event_type__exact=logout", None, "client@acme.test"),
    ],
)
def test_search_and_filters_work(superuser, events, query, shown, hidden):
    response = superuser.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    html = response.content.decode()
    if shown:
        assert shown in html
    assert hidden not in html.split('id="changelist"')[1]


def test_the_agency_filter_works(superuser, events, acme):
    html = superuser.get(f"{CHANGELIST}?agency__id__exact={acme.agency.pk}").content.decode()
    assert "client@acme.test" in html
    assert "client@globex.test" not in html.split('id="result_list"')[1]


def test_the_date_filter_works(superuser, events):
    html = superuser.get(CHANGELIST).content.decode()
    link = re.search(r'href="(\?occurred_at__gte=[^"]+)"[^>]*>Past 7 days', html).group(1)
    response = superuser.get(CHANGELIST + link.replace("&amp;", "&"))
    assert response.status_code == 200
    assert "client@acme.test" in response.content.decode()


def test_the_changelist_never_counts_the_whole_table(superuser, events):
    with CaptureQueriesContext(connection) as queries:
        assert superuser.get(CHANGELIST).status_code == 200
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the capped count should run"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_the_changelist_fetches_clients_and_agencies_in_the_same_query(superuser, events):
    with CaptureQueriesContext(connection) as queries:
        superuser.get(CHANGELIST)
    event_queries = [q["sql"] for q in queries if 'FROM "activitylog_authevent"' in q["sql"] and "JOIN" in q["sql"]]
    assert event_queries


def test_there_is_no_add_change_delete_or_bulk_action_even_for_superusers(superuser, events):
    event = events[0]
    html = superuser.get(CHANGELIST).content.decode()
    assert "Add activity event" not in html and 'name="action"' not in html
    detail = superuser.get(f"{CHANGELIST}{event.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert superuser.post(f"{CHANGELIST}{event.pk}/change/", {"ip": "10.0.0.1"}).status_code == 403
    assert superuser.get(f"{CHANGELIST}add/").status_code == 403
    assert superuser.post(f"{CHANGELIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuthEvent.objects.get(pk=event.pk).ip == "203.0.113.10"


def test_agency_staff_cannot_open_the_event_admin(client, events, acme):
    client.force_login(acme.super_admin)
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response.url
    acme.super_admin.is_staff = True  # even with admin access for other models
    acme.super_admin.save()
    assert client.get(CHANGELIST).status_code == 403


def test_portal_users_cannot_open_admin(client, events, acme):
    client.force_login(acme.portal_user)
    assert client.get(CHANGELIST).status_code == 302


def test_a_portal_account_with_superuser_flags_still_cannot_read_the_events(client, events, acme):
    from clients.models import User

    User.objects.filter(pk=acme.portal_user.pk).update(is_staff=True, is_superuser=True)
    client.force_login(acme.portal_user)
    assert client.get(CHANGELIST).status_code == 403


def test_agencies_staff_and_clients_are_managed_in_admin(superuser, acme):
    for path in ("clients/agency/", "clients/client/", "clients/user/", "clients/staffmembership/"):
        assert superuser.get(f"/admin/{path}").status_code == 200, path
    assert superuser.get(f"/admin/clients/client/{acme.client.pk}/change/").status_code == 200


def test_deleting_a_client_with_history_in_admin_keeps_everything(superuser, events, acme):
    response = superuser.post(f"/admin/clients/client/{acme.client.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "Cannot delete client" in response.content.decode()
    assert "Archive the client instead" in response.content.decode()
    assert Client.objects.filter(pk=acme.client.pk).exists()
    assert AuthEvent.objects.filter(client=acme.client).count() == 1


def test_clients_are_archived_with_an_admin_action(superuser, acme):
    response = superuser.post(
        "/admin/clients/client/", {"action": "archive", "_selected_action": [acme.client.pk]}, follow=True
    )
    assert response.status_code == 200
    acme.client.refresh_from_db()
    assert acme.client.is_archived


def test_a_capped_count_says_more_than_instead_of_a_wrong_number(superuser, acme, monkeypatch):
    from activitylog.admin import CappedCountPaginator

    for _ in range(3):
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN_FAILED)
    monkeypatch.setattr(CappedCountPaginator, "CAP", 2)

    html = superuser.get(CHANGELIST).content.decode()
    assert "More than 2 activity events" in html
    html = superuser.get(f"{CHANGELIST}?q=client@acme.test").content.decode()
    assert "More than 2 results" in html


def test_times_are_shown_with_seconds_and_zone_in_utc_and_the_agencys_time(superuser, events):
    from activitylog.chain import format_timestamp

    event = events[0]  # Acme is in America/New_York
    html = superuser.get(CHANGELIST).content.decode()
    assert f"<td class=\"field-occurred_local\">{spell(event.occurred_at, ZoneInfo('America/New_York'))}</td>" in html
    assert spell_utc(event.occurred_at) in html and spell_utc(event.occurred_at).endswith(" UTC")

    html = superuser.get(f"{CHANGELIST}{event.pk}/change/").content.decode()
    assert spell_utc(event.occurred_at) in html
    assert spell(event.occurred_at, ZoneInfo("America/New_York")) in html
    assert format_timestamp(event.occurred_at) in html  # the exact value the hash covers
