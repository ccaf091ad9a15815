"""Response headers that keep a client's sign-in history off shared computers."""

import pytest

from activitylog.services import auth_event_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(client, acme):
    auth_event_record(user=acme.portal_user, event_type="login", ip="203.0.113.10")
    client.force_login(acme.manager)
    return client


def _pages(people) -> dict[str, dict]:
    tab = f"/clients/{people.client.pk}/activity/"
    return {
        tab: {},
        f"{tab}?type=login": {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "activity-results"},
        f"{tab}?type=login ": {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "client-tabs"},
        f"{tab}?date_from=2026-05-02&date_to=2026-05-01": {"HTTP_HX_REQUEST": "true"},
        f"/clients/{people.client.pk}/": {},
        "/clients/": {},
    }


def test_every_log_page_and_partial_is_private_and_never_stored(manager, acme):
    for path, headers in _pages(acme).items():
        response = manager.get(path, **headers)
        assert response.status_code in (200, 422), path
        directives = {d.strip() for d in response["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives, path


@pytest.mark.django_db(transaction=True)
async def test_the_csv_download_is_private_and_never_stored(async_client, acme):
    await async_client.aforce_login(acme.admin)
    response = await async_client.get(f"/clients/{acme.client.pk}/activity/export.csv")
    assert response.status_code == 200
    assert {"private", "no-store"} <= {d.strip() for d in response["Cache-Control"].split(",")}

