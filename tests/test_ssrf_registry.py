"""The outbound guard against IANA's special-purpose address registries (tests/data/iana):
an address inside every entry that is not globally reachable is refused, directly and in every
IPv6 form that embeds an IPv4 address; ordinary public addresses are allowed."""

from __future__ import annotations

import csv
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from hypersdk.lib import outbound_http

REGISTRIES = Path(__file__).parent / "data" / "iana"


@dataclass(frozen=True)
class Entry:
    network: outbound_http.Network
    name: str
    globally_reachable: bool


def read_registry(file_name: str) -> list[Entry]:
    """Every block of a registry CSV; "Globally Reachable" is true only when it says True
    (False, N/A and the blank cells of terminated entries are not)."""
    entries = []
    with open(REGISTRIES / file_name, newline="") as file:
        for row in csv.DictReader(file):
            reachable = row["Globally Reachable"].strip().startswith("True")
            for block in row["Address Block"].split(","):
                network = ipaddress.ip_network(block.split("[")[0].strip())
                entries.append(Entry(network, row["Name"], reachable))
    return entries


IPV4 = read_registry("iana-ipv4-special-registry-1.csv")
IPV6 = read_registry("iana-ipv6-special-registry-1.csv")


def inside(entry: Entry, registry: list[Entry]) -> outbound_http.Address:
    """An address of the entry that no more specific, globally reachable entry claims."""
    network = entry.network
    candidates = [network[0], network[-1], network[network.num_addresses // 2]]
    if network.num_addresses > 2:
        candidates.insert(1, network[1])
    for address in candidates:
        claimed = [e for e in registry if address in e.network and e.network.prefixlen > network.prefixlen]
        if not any(e.globally_reachable for e in claimed):
            return address
    raise AssertionError(f"no address of {network} is left to {entry.name}")


def not_reachable(registry: list[Entry]) -> list[tuple[str, outbound_http.Address]]:
    return [(f"{e.network} {e.name}", inside(e, registry)) for e in registry if not e.globally_reachable]


def embeddings(v4: ipaddress.IPv4Address) -> dict[str, ipaddress.IPv6Address]:
    """The IPv6 transition forms that carry an IPv4 address."""
    n = int(v4)
    return {
        "IPv4-mapped": ipaddress.IPv6Address(f"::ffff:{v4}"),
        "IPv4-translated": ipaddress.IPv6Address((0xFFFF << 48) | n),
        "IPv4-compatible": ipaddress.IPv6Address(n),
        "NAT64 well-known": ipaddress.IPv6Address(f"64:ff9b::{v4}"),
        "NAT64 local-use": ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b:1::")) | n),
        "6to4": ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1),
        # Teredo keeps the client's address inverted in the last 32 bits.
        "Teredo": ipaddress.IPv6Address((0x20010000 << 96) | (n ^ 0xFFFFFFFF)),
        "ISATAP": ipaddress.IPv6Address(int(ipaddress.IPv6Address("2a00:1450:4001:82a:0:5efe::")) | n),
        "ISATAP (universal)": ipaddress.IPv6Address(
            int(ipaddress.IPv6Address("2a00:1450:4001:82a:200:5efe::")) | n
        ),
    }


EMBEDDED = [
    (f"{kind} of {label}", v6) for label, v4 in not_reachable(IPV4) for kind, v6 in embeddings(v4).items()
]


def refusal(address: outbound_http.Address) -> str | None:
    try:
        outbound_http.check_address(str(address), 443, ())
    except outbound_http.RefusedDestination as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(("entry", "address"), not_reachable(IPV4), ids=[e for e, _ in not_reachable(IPV4)])
def test_every_ipv4_block_iana_lists_as_not_globally_reachable_is_refused(entry, address):
    assert refusal(address), f"{address} ({entry}) was allowed"


@pytest.mark.parametrize(("entry", "address"), not_reachable(IPV6), ids=[e for e, _ in not_reachable(IPV6)])
def test_every_ipv6_block_iana_lists_as_not_globally_reachable_is_refused(entry, address):
    assert refusal(address), f"{address} ({entry}) was allowed"


@pytest.mark.parametrize(("form", "address"), EMBEDDED, ids=[form for form, _ in EMBEDDED])
def test_ipv6_forms_embedding_a_non_public_ipv4_address_are_refused(form, address):
    assert refusal(address), f"{address} ({form}) was allowed"


def test_the_registries_were_read_whole():
    # Guards the generator itself: a parsing slip must not shrink the tables above to nothing.
    assert (len(IPV4), len(IPV6)) == (26, 25)
    assert sum(not e.globally_reachable for e in IPV4 + IPV6) == 21 + 16


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "2001:4860:4860::8888",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",
    ],
)
def test_ordinary_public_addresses_are_allowed(address):
    assert refusal(ipaddress.ip_address(address)) is None
    assert outbound_http.describe(ipaddress.ip_address(address)) is None


def test_the_address_checked_is_the_address_connected_to(monkeypatch):
    """DNS rebinding: the name is looked up once per connection; a later answer pointing
    elsewhere (here another loopback address, refused by the allowlist) is never used."""
    from tests.webhook_receiver import Receiver

    receiver = Receiver().start()
    answers = ["127.0.0.1", "127.0.0.2", "127.0.0.2"]
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.invalid":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(answers[len(lookups)])
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (lookups[-1], port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    try:
        response = outbound_http.post(
            receiver.url_for("rebind.invalid"),
            content=b"{}",
            headers={},
            timeout=10,
            allowed_networks=("127.0.0.1/32",),
        )
    finally:
        receiver.stop()
    assert (response.status_code, lookups) == (200, ["127.0.0.1"])
    assert receiver.requests[0].headers["host"] == f"rebind.invalid:{receiver.port}"
