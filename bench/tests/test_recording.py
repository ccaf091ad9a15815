"""
Measurement #5 times the portal login with the activity log's receivers off: inside, a
sign-in, a failed one and a sign-out record nothing; afterwards every receiver is back
in its place, and sign-ins are recorded again.
"""

import pytest
from django.test import Client as HttpClient

from activitylog.models import AuthEvent
from bench.recording import ACTIVITY_LOG_RECEIVERS, activity_log_receivers_disconnected
from clients.models import Agency, Client, ClientStatus, User

PASSWORD = "bench-test-password"


def _connected() -> dict:
    return {signal: list(signal.receivers) for signal in ACTIVITY_LOG_RECEIVERS}


def _sign_in(http: HttpClient, email: str, password: str = PASSWORD) -> str:
    """Where the portal's login form sends the browser: /portal/ when signed in."""
    response = http.post("/portal/login/", {"username": email, "password": password})
    return response.url if response.status_code == 302 else f"HTTP {response.status_code}"


@pytest.mark.django_db
def test_the_receivers_are_off_inside_and_back_in_their_place_afterwards():
    agency = Agency.objects.create(name="Bench", slug="bench-test", time_zone="UTC")
    client = Client.objects.create(agency=agency, name="Bench Client", email="hello@bench-client.test",
                                   status=ClientStatus.ACTIVE)
    user = User.objects.create_user(email="portal@bench-client.test", password=PASSWORD, client=client)
    before = _connected()

    with activity_log_receivers_disconnected():
        http = HttpClient()
        assert _sign_in(http, user.email, "wrong-password") == "HTTP 200"
        assert _sign_in(http, user.email) == "/portal/"
        http.post("/portal/logout/")
        assert not AuthEvent.objects.exists()

    assert _connected() == before
    assert _sign_in(HttpClient(), user.email) == "/portal/"
    assert list(AuthEvent.objects.values_list("event_type", flat=True)) == ["login"]
