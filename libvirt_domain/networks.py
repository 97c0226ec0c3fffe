"""The ``-network-map`` option: which libvirt network or host bridge each vSphere network's
NICs join.

Text form: ``"VM Network=default,DMZ=bridge:br-dmz"``: comma-separated ``<vSphere network>=
<target>`` pairs; a target is a libvirt network name (``default``, ``network:default``) or a
host bridge (``bridge:br0``). A ``,``, ``=`` or ``\\`` inside a name is written ``\\,``, ``\\=``
or ``\\\\``. Names are kept exactly (vSphere's names may hold spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_NETWORK",
    "DISK_BUSES",
    "NetworkTarget",
    "check_network_map",
    "escaped",
    "parse_network_map",
]

# The -disk-bus choices; "auto" lets the guest OS decide (libvirt_domain.plan).
DISK_BUSES = ("auto", "virtio", "sata", "scsi")
# Where an unmapped vSphere network's NICs go: the network every libvirt host has by default.
DEFAULT_NETWORK = "default"
# A libvirt network or a Linux bridge name: printable, no "/" (libvirt refuses it in a
# network name; a bridge is a kernel interface name, at most 15 bytes), nothing XML 1.0 cannot
# hold (surrogates, U+FFFE, U+FFFF).
_NETWORK_NAME = re.compile(r"[^\x00-\x20/\x7f-\x9f\ud800-\udfff\ufffe\uffff]{1,64}")
_BRIDGE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,15}")


@dataclass(frozen=True)
class NetworkTarget:
    """Where a NIC goes: ``kind`` "network" (a libvirt network) or "bridge" (a host bridge)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return self.name if self.kind == "network" else f"bridge:{self.name}"


def parse_network_map(text: str) -> dict[str, NetworkTarget]:
    """The map ``text`` holds, vSphere network name → target, in the order given.

    Raises ValueError (one line, naming the pair) for an empty pair, a pair without ``=``, an
    empty side, a network named twice, or a target libvirt would refuse.
    """
    mapping: dict[str, NetworkTarget] = {}
    for pair in _split(text, ","):
        if not pair.strip():
            raise ValueError(f"network map {text!r}: an empty pair (two commas, or one at an end)")
        sides = _split(pair, "=")
        if len(sides) != 2:
            raise ValueError(f"network map pair {_shown(pair)}: write <vSphere network>=<libvirt network>")
        source, target = (_unescape(side) for side in sides)
        if not source.strip():
            raise ValueError(f"network map pair {_shown(pair)}: the vSphere network's name is empty")
        if source in mapping:
            raise ValueError(f"network map: {source!r} is mapped twice")
        mapping[source] = _target(target.strip(), pair)
    return mapping


def escaped(name: str) -> str:
    """``name`` as a network map writes it (a backslash, comma or equals sign escaped with a backslash):
    the inverse of parsing, for advice an operator pastes."""
    return re.sub(r"([\\,=])", r"\\\1", name)


def check_network_map(text: str) -> str:
    """``text`` if it parses (the ``network_map`` option's ``parse``); ValueError otherwise."""
    parse_network_map(text)
    return text


def _target(text: str, pair: str) -> NetworkTarget:
    kind, _, name = text.partition(":") if text.startswith(("bridge:", "network:")) else ("network", "", text)
    pattern = _BRIDGE_NAME if kind == "bridge" else _NETWORK_NAME
    if not pattern.fullmatch(name):
        what = (
            "a bridge name (letters, digits, _ . : -, at most 15)"
            if kind == "bridge"
            else ("a libvirt network name (printable, no spaces or /, at most 64)")
        )
        raise ValueError(f"network map pair {_shown(pair)}: {name!r} is not {what}")
    return NetworkTarget(kind, name)


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at each ``separator`` not escaped with a backslash (escapes kept)."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _shown(pair: str) -> str:
    return repr(pair if len(pair) <= 80 else pair[:77] + "...")
