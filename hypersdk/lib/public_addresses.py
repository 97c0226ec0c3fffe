"""Which IP addresses HyperSDK may send to: the globally reachable ones in IANA's
special-purpose registries (``describe`` says why another is refused), IPv6 transition forms
judged by the IPv4 address they carry, and the networks an operator allows."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses); a bad one raises ValueError naming it."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a network in CIDR notation (e.g. 127.0.0.0/8)") from None
    return tuple(networks)


# IPv6 prefixes refused whatever they carry: the registry marks them not globally reachable
# (6to4 and Teredo "N/A": whether they reach anything depends on relays), and the IPv4-in-IPv6
# forms among them would reach an IPv4 address without the IPv4 checks (RFC 4291, 6052, 8215).
_TRANSITION_PREFIXES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(prefix), why)
    for prefix, why in (
        ("::ffff:0:0/96", "an IPv4-mapped address"),
        ("::ffff:0:0:0/96", "an IPv4-translated address"),
        ("::/96", "an IPv4-compatible address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("2002::/16", "a 6to4 address"),
        ("2001::/32", "a Teredo address"),
    )
)
# Entries of IANA's special-purpose registries (iana-ipv4/ipv6-special-registry) that are not
# globally reachable but that Python 3.11's is_global/is_private miss; the registry-driven
# tests (tests/test_ssrf_registry.py) show each one.
_NOT_GLOBALLY_REACHABLE: tuple[Network, ...] = tuple(
    ipaddress.ip_network(block)
    for block in (
        "192.0.0.0/24",  # IETF protocol assignments (192.0.0.8, the dummy address, is global to 3.11)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast, and 6a44 relays in it
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
        "100:0:0:1::/64",  # dummy IPv6 prefix (RFC 9780)
    )
)
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)  # interface ids ::0:5efe:a.b.c.d and ::200:5efe:a.b.c.d


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries (mapped, translated, compatible,
    NAT64, 6to4, Teredo's client, ISATAP's interface id), or None."""
    value = int(address)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _TRANSITION_PREFIXES[0][0] or address in _TRANSITION_PREFIXES[1][0]:
        return low32
    if address in _TRANSITION_PREFIXES[2][0] and value > 1:
        return low32
    if address in _NAT64 or address in _TRANSITION_PREFIXES[3][0]:
        return low32
    if address in _TRANSITION_PREFIXES[4][0]:  # 2002:AABB:CCDD::/48
        return ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    if address in _TRANSITION_PREFIXES[5][0]:  # the client's address, inverted
        return ipaddress.IPv4Address((value & 0xFFFFFFFF) ^ 0xFFFFFFFF)
    if (value >> 32) & 0xFFFFFFFF in _ISATAP_IDS:
        return low32
    return None


def describe(address: Address) -> str | None:
    """Why an address is refused (``"a loopback address"``), or None when it is public.

    Public means globally reachable in IANA's special-purpose registries: Python's is_global,
    plus the registry entries it misses; an IPv6 form that embeds an IPv4 address is refused
    when that IPv4 address is, and the transition prefixes themselves are refused too.
    """
    # Before the transition prefixes: ::1 and :: lie in ::/96 but are loopback and unspecified,
    # not IPv4-compatible addresses.
    if address.is_unspecified:
        return "not a public address"
    if address.is_loopback:
        return "a loopback address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None and (why := describe(embedded)) is not None:
            return why
        if address in _NAT64:  # globally reachable: what it reaches is the IPv4 checked above
            return None
        for prefix, why in _TRANSITION_PREFIXES:
            if address in prefix:
                return why
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or not address.is_global:
        return "not a public address"
    if any(address in network for network in _NOT_GLOBALLY_REACHABLE):
        return "not a public address"
    return None


def permitted(address: Address, allowed: Sequence[Network]) -> bool:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if any(address in network or (mapped is not None and mapped in network) for network in allowed):
        return True
    return describe(address) is None


@cache
def parse_networks_cached(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)
