"""
Which Origin may open a websocket (agencyhandy/origin.py), rule by rule. The same check
on a real daphne process, plain and behind a TLS proxy: tests/test_production_server.py.
"""

import pytest

from agencyhandy.origin import origin_allowed


def scope(origin: str | None, host: str = "crm.example.com", scheme: str = "ws", **headers: str) -> dict:
    pairs = [("host", host), *((k.replace("_", "-"), v) for k, v in headers.items())]
    if origin is not None:
        pairs.append(("origin", origin))
    return {"type": "websocket", "scheme": scheme, "headers": [(k.encode(), v.encode()) for k, v in pairs]}


@pytest.fixture(autouse=True)
def _site(settings):
    settings.ALLOWED_HOSTS = ["crm.example.com", "localhost"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None


def test_the_sites_own_origin_is_allowed_with_or_without_the_default_port():
    assert origin_allowed(scope("http://crm.example.com"))
    assert origin_allowed(scope("http://crm.example.com:80"))
    assert origin_allowed(scope("https://crm.example.com", scheme="wss"))
    assert origin_allowed(scope("http://crm.example.com:8001", host="crm.example.com:8001"))


@pytest.mark.parametrize("origin", [
    "https://crm.example.com",  # scheme: the request came over plain ws
    "http://crm.example.com:8080",  # port
    "http://localhost",  # host, though it is an allowed host too
    "http://evil.example",
    "null",  # sandboxed frames and file:// pages
    "",
    "http://crm.example.com/path",
    "http://user@crm.example.com",
    "http://crm.example.com:99999",
])
def test_any_other_origin_is_refused(origin):
    assert not origin_allowed(scope(origin))


def test_a_handshake_without_origin_is_refused():
    assert not origin_allowed(scope(None))


def test_a_host_outside_allowed_hosts_is_not_its_own_origin():
    assert not origin_allowed(scope("http://evil.example", host="evil.example"))


def test_behind_a_tls_proxy_the_proxys_scheme_counts(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(scope("https://crm.example.com", x_forwarded_proto="https"))
    assert not origin_allowed(scope("http://crm.example.com", x_forwarded_proto="https"))
    assert origin_allowed(scope("http://crm.example.com", x_forwarded_proto="http"))


def test_the_forwarded_scheme_is_ignored_unless_a_proxy_is_configured():
    assert not origin_allowed(scope("https://crm.example.com", x_forwarded_proto="https"))


def test_csrf_trusted_origins_are_allowed_by_scheme_host_and_port(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.agency.example"]
    assert origin_allowed(scope("https://app.example.com"))
    assert not origin_allowed(scope("http://app.example.com"))
    assert not origin_allowed(scope("https://app.example.com:8443"))
    assert origin_allowed(scope("https://eu.agency.example"))
    assert not origin_allowed(scope("http://eu.agency.example"))
    assert not origin_allowed(scope("https://agency.example.evil"))
