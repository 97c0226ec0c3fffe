"""The address of the client behind a request, trusting a proxy header only from trusted proxies.

``REMOTE_ADDR`` is the peer that connected to us. When that peer is one of
``HYPERSDK_TRUSTED_PROXIES`` (addresses or networks), the client is read from
``HYPERSDK_CLIENT_ADDRESS_HEADER`` (default ``X-Forwarded-For``): walking it from the right,
the first address that is not itself a trusted proxy. Anyone else's header is ignored, so a
client cannot choose the address it is counted under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def header_meta_key(header: str) -> str:
    """``X-Forwarded-For`` -> ``HTTP_X_FORWARDED_FOR`` (how WSGI/ASGI requests carry it)."""
    return "HTTP_" + header.strip().upper().replace("-", "_")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:5123"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, networks: list[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address_from(meta: Mapping[str, str], peer: str | None = None) -> str:
    """The client's address for request META (or a websocket's headers as META); '' if unknown."""
    peer = meta.get("REMOTE_ADDR", "") if peer is None else peer
    networks = settings.HYPERSDK_TRUSTED_PROXIES
    if not networks or not _trusted(_address(peer), networks):
        return peer
    hops = [hop for hop in meta.get(header_meta_key(settings.HYPERSDK_CLIENT_ADDRESS_HEADER), "").split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # A malformed entry: what lies left of it was written by someone we do not trust.
            break
        if not _trusted(address, networks):
            return str(address)
    return peer


def client_address(request) -> str:
    """The client's address of a Django request (see the module docstring)."""
    return client_address_from(request.META)
