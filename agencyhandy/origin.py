"""
The websocket Origin check: only pages of this site may open its websockets.

A browser sends the user's cookies with a websocket handshake from any page on any
site, and no CSRF token protects it; the Origin header, which a page cannot forge, is
the only defence against cross-site websocket hijacking.

An origin is allowed when its scheme, host and port all equal those of either
- the site itself, as this request reached it: `https` when the request came over TLS or
  the proxy says so (SECURE_PROXY_SSL_HEADER, set when TRUSTED_PROXIES is), the Host
  header (which must be in ALLOWED_HOSTS) and its port; or
- one of CSRF_TRUSTED_ORIGINS (`https://*.example.com` allows the subdomains).
These are the origins Django's CSRF check accepts for a form post, so an operator who
gets sign-in working behind a TLS proxy gets the websockets right too. (Channels'
AllowedHostsOriginValidator compared the host name only: an `http://` page, or one on
another port of the same host, could open a socket.)

A request without an Origin is refused: browsers always send one.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain, split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


class SiteOriginValidator:
    """ASGI middleware: refuses the handshake (HTTP 403) of a websocket from another origin."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def origin_allowed(scope: dict) -> bool:
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
    origin = _parse(headers.get("origin", ""))
    if origin is None:
        return False
    if origin == _own_origin(scope, headers):
        return True
    return any(_trusted(origin, pattern) for pattern in settings.CSRF_TRUSTED_ORIGINS)


def _parse(value: str) -> tuple[str, str, int] | None:
    """("https", "crm.example.com", 443) from "https://crm.example.com", or None if it is no origin."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return _host_and_port(scheme, parts.netloc)


def _host_and_port(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    domain, port = split_domain_port(netloc)  # the spelling ALLOWED_HOSTS uses; "" if malformed
    if not domain:
        return None
    if not port:
        return scheme, domain, DEFAULT_PORTS[scheme]
    if not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return scheme, domain, int(port)


def _own_origin(scope: dict, headers: dict[str, str]) -> tuple[str, str, int] | None:
    host = headers.get("host", "")
    if settings.USE_X_FORWARDED_HOST and "x-forwarded-host" in headers:
        host = headers["x-forwarded-host"]
    own = _host_and_port("https" if _is_secure(scope, headers) else "http", host)
    if own is None or not validate_host(own[1], _allowed_hosts()):
        return None
    return own


def _is_secure(scope: dict, headers: dict[str, str]) -> bool:
    """As Django's request.is_secure(): the proxy's header when one is configured, else the connection."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        name = header.removeprefix("HTTP_").replace("_", "-").lower()
        if name in headers:
            return headers[name].split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") in ("wss", "https")


def _allowed_hosts() -> list[str]:
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]  # as Django's own host check
    return settings.ALLOWED_HOSTS


def _trusted(origin: tuple[str, str, int], pattern: str) -> bool:
    scheme, _, rest = pattern.partition("://")
    wildcard = rest.startswith("*.")
    trusted = _parse(f"{scheme}://{rest.removeprefix('*.')}")
    if trusted is None:
        return False
    if not wildcard:
        return origin == trusted
    return origin[0] == trusted[0] and origin[2] == trusted[2] and is_same_domain(origin[1], "." + trusted[1])
