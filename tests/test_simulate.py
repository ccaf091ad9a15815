"""simulate_portal_activity signs real portal users in and out through a running server."""

import random
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from activitylog.models import AuthEvent, EventType, FailureReason
from demo.data import USER_AGENTS
from demo.management.commands.simulate_portal_activity import Command, _Browser
from tests.conftest import PASSWORD
from tests.servers import asgi_server

pytestmark = pytest.mark.django_db(transaction=True)


def simulate(*args) -> str:
    out = StringIO()
    call_command("simulate_portal_activity", *args, stdout=out)
    return out.getvalue()


def test_it_records_logins_and_logouts_through_the_login_pages(server_passwords, acme, globex):
    with asgi_server() as url:
        output = simulate("--server", url, "--agency", "acme", "--rate", "40", "--duration", "2",
                          "--password", PASSWORD, "--seed", "7")

    events = AuthEvent.objects.all()
    assert events.filter(event_type=EventType.LOGIN).exists()
    assert not events.filter(client=globex.client).exists()
    # Came through HTTP: real user agents and session references, as a browser's would.
    assert set(events.values_list("user_agent", flat=True)) <= set(USER_AGENTS)
    assert all(e.session_ref for e in events.exclude(event_type=EventType.LOGIN_FAILED))
    assert "Done:" in output
    verify = StringIO()
    call_command("verify_activity_log", stdout=verify)
    assert "All chains intact" in verify.getvalue()


class _AlwaysUnlucky(random.Random):
    def random(self) -> float:
        return 0.0  # every sign-in would use a wrong password, if the simulator let it


def test_it_never_trips_the_login_throttle(server_passwords, acme):
    browser, counts = _Browser("client@acme.test", USER_AGENTS[0]), {"login": 0, "logout": 0, "failed": 0}
    with asgi_server() as url:
        for _ in range(15):
            Command(stdout=StringIO())._step(browser, url, PASSWORD, _AlwaysUnlucky(), counts)

    assert counts == {"login": 5, "logout": 5, "failed": 5}
    assert not AuthEvent.objects.filter(reason=FailureReason.LOCKED_OUT).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agency", "nope"], "No agency with slug 'nope'"),
        (["--rate", "0"], "--rate must be above 0"),
        (["--duration", "-1"], "--duration must be above 0"),
        (["--server", "ftp://x"], "--server must look like"),
    ],
)
def test_bad_arguments_are_clear_errors(acme, args, message):
    with pytest.raises(CommandError, match=message) as excinfo:
        simulate(*args)
    assert excinfo.value.returncode == 2


def test_a_server_that_is_not_running_is_a_clear_error(acme):
    with pytest.raises(CommandError, match="Is the server running"):
        simulate("--server", "http://127.0.0.1:1", "--duration", "1")
