"""The Clients page and the Overview tab of Client Details."""

import re

import pytest

from activitylog.models import EventType
from activitylog.services import auth_event_record
from clients.models import Client, ClientStatus

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def manager(client, acme):
    client.force_login(acme.manager)
    return client


@pytest.fixture
def more_clients(acme):
    return {
        "inactive": Client.objects.create(agency=acme.agency, name="Dormant Dairy", email="d@dairy.test",
                                          status=ClientStatus.INACTIVE),
        "invited": Client.objects.create(agency=acme.agency, name="Invited Inc", email="i@invited.test",
                                         company_name="Searchable Widgets", status=ClientStatus.INVITED),
        "archived": Client.objects.create(agency=acme.agency, name="Gone Gallery", email="g@gone.test",
                                          is_archived=True),
    }


def names(html: str) -> list[str]:
    return re.findall(r'<a href="/clients/\d+/">([^<]+)</a>', html)


def test_the_clients_page_lists_current_clients_by_name(manager, acme, more_clients):
    assert names(manager.get("/clients/").content.decode()) == ["Acme Client Co", "Dormant Dairy", "Invited Inc"]


def test_it_searches_name_email_company_and_portal_user_email(manager, acme, more_clients):
    assert names(manager.get("/clients/?q=widgets").content.decode()) == ["Invited Inc"]
    assert names(manager.get("/clients/?q=dairy.test").content.decode()) == ["Dormant Dairy"]
    assert names(manager.get("/clients/?q=member@acme").content.decode()) == ["Acme Client Co"]


def test_it_filters_by_status_and_shows_archived_separately(manager, acme, more_clients):
    assert names(manager.get("/clients/?status=inactive").content.decode()) == ["Dormant Dairy"]
    assert names(manager.get("/clients/?status=archived").content.decode()) == ["Gone Gallery"]


def test_it_shows_each_clients_last_login_or_never(manager, acme, more_clients):
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
    html = manager.get("/clients/").content.decode()
    rows = html.split("<tr>")
    acme_row = next(r for r in rows if "Acme Client Co" in r)
    dairy_row = next(r for r in rows if "Dormant Dairy" in r)
    assert '<time class="stamp" datetime=' in acme_row and ">just now<" in acme_row
    assert "Never" in dairy_row


def test_an_htmx_search_returns_only_the_results(manager, acme):
    html = manager.get("/clients/?q=acme", **HTMX).content.decode()
    assert "<html" not in html and "Acme Client Co" in html


@pytest.mark.parametrize("query", ["status=deleted", "page=0", "page=abc", "q=" + "x" * 101])
def test_bad_list_parameters_are_a_clear_422_shown_inline(manager, acme, query):
    response = manager.get(f"/clients/?{query}")
    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()


def test_a_page_past_the_end_is_404(manager, acme):
    assert manager.get("/clients/?page=5").status_code == 404


def test_the_overview_shows_the_profile_and_portal_users(manager, acme):
    html = manager.get(f"/clients/{acme.client.pk}/").content.decode()
    assert "Acme Client Company" in html
    assert "client@acme.test" in html and "member@acme.test" in html
    assert 'aria-selected="true"' in html and 'role="tabpanel"' in html


def test_an_htmx_tab_switch_to_overview_returns_only_the_tab(manager, acme):
    html = manager.get(f"/clients/{acme.client.pk}/", **HTMX).content.decode()
    assert "<html" not in html and 'id="tab-overview"' in html


def test_the_menu_has_clients(manager):
    html = manager.get("/clients/").content.decode()
    assert 'aria-label="Main"' in html and 'aria-current="page"' in html and "Clients</a>" in html


def test_the_home_page_goes_to_clients(client, acme):
    assert client.get("/").url == "/clients/"
