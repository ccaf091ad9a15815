"""
Who sees what: every role of both agencies, portal users and anonymous visitors, on
every staff endpoint, the full page and each htmx partial.
"""

from datetime import UTC, datetime

import pytest

from activitylog.models import EventType
from activitylog.selectors import Keyset
from activitylog.services import auth_event_record
from tests.conftest import ALL_ROLES, LOG_ROLES

HTMX = {"HTTP_HX_REQUEST": "true"}


def activity_urls(client_id: int) -> list[tuple[str, dict]]:
    """The Activity Log tab as a page, as a tab switch, as a filter swap and as "Load older"."""
    cursor = Keyset(datetime(2030, 1, 1, tzinfo=UTC), 10**9).encode()
    base = f"/clients/{client_id}/activity/"
    return [
        (base, {}),
        (base, HTMX | {"HTTP_HX_TARGET": "client-tabs"}),
        (base + "?type=login", HTMX | {"HTTP_HX_TARGET": "activity-results"}),
        (base + "?cursor=" + cursor, HTMX | {"HTTP_HX_TARGET": "load-older"}),
    ]


@pytest.fixture
def logged(acme, globex):
    """Both clients have some history."""
    for people in (acme, globex):
        auth_event_record(user=people.portal_user, event_type=EventType.LOGIN, ip="203.0.113.1")


@pytest.mark.parametrize("role", LOG_ROLES)
def test_log_roles_see_their_own_clients_log_everywhere(client, acme, globex, logged, role):
    client.force_login(acme.staff(role))
    for url, headers in activity_urls(acme.client.pk):
        response = client.get(url, **headers)
        assert response.status_code == 200, (url, headers)
        assert "client@acme.test" in response.content.decode(), (url, headers)


@pytest.mark.parametrize("role", LOG_ROLES)
def test_log_roles_see_the_activity_tab_on_client_details(client, acme, role):
    client.force_login(acme.staff(role))
    response = client.get(f"/clients/{acme.client.pk}/")
    assert response.status_code == 200
    assert 'id="tab-activity"' in response.content.decode()


def test_an_employee_gets_403_on_every_activity_endpoint(client, acme, logged):
    client.force_login(acme.employee)
    for url, headers in activity_urls(acme.client.pk):
        response = client.get(url, **headers)
        assert response.status_code == 403, (url, headers)
        assert "client@acme.test" not in response.content.decode()


def test_an_employee_does_not_see_the_activity_tab_but_sees_the_client(client, acme):
    client.force_login(acme.employee)
    response = client.get(f"/clients/{acme.client.pk}/")
    assert response.status_code == 200
    assert "Activity Log" not in response.content.decode()


@pytest.mark.parametrize("role", ALL_ROLES)
def test_another_agencys_client_is_404_without_a_hint(client, acme, globex, logged, role):
    client.force_login(acme.staff(role))
    for url, headers in [(f"/clients/{globex.client.pk}/", {}), *activity_urls(globex.client.pk)]:
        response = client.get(url, **headers)
        assert response.status_code == 404, (url, headers)
        body = response.content.decode()
        assert globex.client.name not in body and "client@globex.test" not in body


@pytest.mark.parametrize("role", ALL_ROLES)
def test_the_clients_page_lists_only_the_agencys_own_clients(client, acme, globex, role):
    client.force_login(globex.staff(role))
    body = client.get("/clients/").content.decode()
    assert globex.client.name in body
    assert acme.client.name not in body


def test_a_nonexistent_client_is_404(client, acme):
    client.force_login(acme.manager)
    assert client.get("/clients/999999/activity/").status_code == 404
    assert client.get("/clients/99999999999999999999999999/activity/").status_code == 404


@pytest.mark.parametrize("who", ["portal_user", "portal_member"])
def test_portal_users_are_sent_to_the_portal_from_every_staff_page(client, acme, logged, who):
    client.force_login(getattr(acme, who))
    for url in ["/clients/", f"/clients/{acme.client.pk}/", f"/clients/{acme.client.pk}/activity/"]:
        response = client.get(url)
        assert response.status_code == 302 and response.url == "/portal/", url
    for url, headers in activity_urls(acme.client.pk)[1:]:
        response = client.get(url, **headers)
        assert response.headers.get("HX-Redirect") == "/portal/", url


def test_the_portal_never_shows_the_activity_log(client, acme, logged):
    client.force_login(acme.portal_user)
    body = client.get("/portal/").content.decode()
    assert "Activity" not in body and "203.0.113.1" not in body


def test_anonymous_visitors_are_redirected_to_login(client, acme):
    for url in ["/clients/", f"/clients/{acme.client.pk}/", f"/clients/{acme.client.pk}/activity/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/login/?next=")


def test_anonymous_htmx_requests_get_a_full_page_redirect(client, acme):
    response = client.get(f"/clients/{acme.client.pk}/activity/", **HTMX)
    assert response.headers["HX-Redirect"].startswith("/login/?next=")


def test_a_platform_superuser_without_an_agency_is_refused_staff_pages(client, acme, root):
    client.force_login(root)
    assert client.get("/clients/").status_code == 403
    assert client.get(f"/clients/{acme.client.pk}/activity/").status_code == 403


def test_a_deactivated_staff_user_is_signed_out(client, acme):
    client.force_login(acme.manager)
    acme.manager.is_active = False
    acme.manager.save()
    assert client.get(f"/clients/{acme.client.pk}/activity/").status_code == 302


def test_losing_the_role_takes_effect_on_the_next_request(client, acme, logged):
    client.force_login(acme.manager)
    assert client.get(f"/clients/{acme.client.pk}/activity/").status_code == 200
    membership = acme.manager.staff_membership
    membership.role = "employee"
    membership.save()
    assert client.get(f"/clients/{acme.client.pk}/activity/").status_code == 403
    membership.delete()
    assert client.get(f"/clients/{acme.client.pk}/activity/").status_code == 403


def test_activity_pages_do_not_accept_post(client, acme):
    client.force_login(acme.manager)
    assert client.post(f"/clients/{acme.client.pk}/activity/").status_code == 405
