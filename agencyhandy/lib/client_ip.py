"""
The address a request really came from.

X-Forwarded-For is a list that anyone can start: a client can send
"X-Forwarded-For: 1.2.3.4" itself, and each proxy appends the address it saw.
So we believe the header only when the direct peer is one of our TRUSTED_PROXIES,
and then walk it from the right, skipping our own proxies, to the first address
that none of them vouches for. With no trusted proxies configured the header is
ignored entirely.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


@lru_cache(maxsize=1024)
def canonical_ip(value: str) -> str:
    """
    The one spelling of an address that is stored and hashed (PostgreSQL's, too).

    Cached: parsing costs more than the rest of checking an event, and a client's
    events mostly come from a few addresses.
    """
    address = ipaddress.ip_address(value)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(meta: dict) -> str | None:
    """Return the client's IP from a request's META (or an ASGI-derived dict), or None."""
    peer = _parse(meta.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))
    if not trusted or not any(peer in net for net in trusted):
        return str(peer)
    hops = [h for h in (meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if h.strip()]
    address = peer
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            # A garbled entry: everything left of it is unverifiable. Stop at the last
            # address a trusted proxy gave us.
            break
        address = parsed
        if not any(parsed in net for net in trusted):
            break
    return str(address)


def request_client_ip(request) -> str | None:
    """The client's IP of a Django request; login throttling counts attempts by it too."""
    return client_ip(request.META)
