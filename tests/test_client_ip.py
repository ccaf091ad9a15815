"""The recorded IP believes X-Forwarded-For only from configured proxies."""

import pytest

from activitylog.models import AuthEvent
from agencyhandy.lib.client_ip import client_ip
from tests.conftest import portal_login


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        # No trusted proxies: the header is ignored, whatever it says.
        ([], "203.0.113.7", "1.2.3.4", "203.0.113.7"),
        # A trusted proxy: the address it saw is believed.
        (["10.0.0.1"], "10.0.0.1", "198.51.100.20", "198.51.100.20"),
        # A client-supplied first entry is never believed: take the rightmost untrusted hop.
        (["10.0.0.1"], "10.0.0.1", "6.6.6.6, 198.51.100.20", "198.51.100.20"),
        # Chains of our own proxies (CIDR) are skipped.
        (["10.0.0.0/8"], "10.0.0.2", "198.51.100.20, 10.1.2.3", "198.51.100.20"),
        # A request from an untrusted peer cannot spoof the header.
        (["10.0.0.1"], "203.0.113.7", "1.2.3.4", "203.0.113.7"),
        # Garbage in the header stops the walk at the last address a proxy gave.
        (["10.0.0.1"], "10.0.0.1", "not-an-ip", "10.0.0.1"),
        # Ports and IPv6 brackets are understood.
        (["10.0.0.1"], "10.0.0.1", "[2001:db8::5]:443", "2001:db8::5"),
        (["10.0.0.1"], "10.0.0.1", "198.51.100.20:5123", "198.51.100.20"),
        # Only proxies: the leftmost proxy is all we know.
        (["10.0.0.0/8"], "10.0.0.2", "10.0.0.9", "10.0.0.9"),
        # IPv4-mapped IPv6 peers are recorded as IPv4.
        ([], "::ffff:203.0.113.9", "", "203.0.113.9"),
    ],
)
def test_client_ip_rules(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = proxies
    assert client_ip({"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}) == expected


def test_a_missing_or_garbled_peer_address_is_recorded_as_unknown():
    assert client_ip({}) is None
    assert client_ip({"REMOTE_ADDR": "garbage"}) is None


def test_a_spoofed_header_does_not_change_the_recorded_ip(client, acme, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    portal_login(client, "client@acme.test", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert AuthEvent.objects.get().ip == "203.0.113.7"


def test_a_login_through_a_trusted_proxy_records_the_client_address(client, acme, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    portal_login(client, "client@acme.test", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.20")
    assert AuthEvent.objects.get().ip == "198.51.100.20"
