"""What osinfo-db knows of a VM's guest OS: does it ship virtio drivers?

osinfo-db (Debian ``osinfo-db``; ``$OSINFO_SYSTEM_DIR``, default ``/usr/share/osinfo``, as
libosinfo reads it) lists, per OS, the PCI devices it has drivers for, inherited along
``<derives-from>`` and ``<clones>``. vSphere names guest OSes by ``guestId`` (``debian11_64Guest``), osinfo-db
by short id (``debian11``): ``_CANDIDATES`` maps the one to the other, most specific first,
ending with osinfo-db's generic Linux entries where vSphere gives no version.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["GuestOS", "guest_os", "osinfo_dir"]

# PCI ids (vendor/device) of the virtio devices, legacy and modern (virtio 1.0), and e1000e.
VIRTIO_BLOCK = {"1af4/1001", "1af4/1042"}
VIRTIO_NET = {"1af4/1000", "1af4/1041"}

# guestId pattern → osinfo-db short ids to try, in order ({0} is the pattern's first group).
_CANDIDATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"debian(\d+)(?:_64)?Guest", ("debian{0}", "linux2022")),
    (r"rhel(\d+)(?:_64)?Guest", ("rhel{0}.0", "rhel{0}", "linux2022")),
    # Versionless names first: "centos64Guest" is not CentOS 64.
    (r"centos(?:64)?Guest", ("centos7.0",)),
    (r"oracleLinux(?:64)?Guest", ("ol7.0",)),
    (r"centos(\d+)(?:_64)?Guest", ("centos{0}.0", "centos{0}", "centos-stream{0}", "linux2022")),
    (r"oracleLinux(\d+)(?:_64)?Guest", ("ol{0}.0", "ol{0}", "linux2022")),
    (r"sles(\d+)(?:_64)?Guest", ("sles{0}", "sles{0}sp5", "linux2022")),
    (r"rockylinux_64Guest", ("rocky8",)),
    (r"almalinux_64Guest", ("almalinux8",)),
    (r"(?:ubuntu|fedora|opensuse|asianux\d*|amazonlinux\d*|vmwarePhoton)(?:_?64)?Guest", ("linux2020",)),
    (r"other([3-6])xLinux(?:_?64)?Guest", ("linux{0}",)),
    # Linux 2.4 has no virtio; 2.6 has since 2.6.25 (osinfo-db's oldest generic Linux is 2016).
    (r"other24xLinux(?:_?64)?Guest", ()),
    (r"other(?:26x)?Linux(?:_?64)?Guest", ("linux2016",)),
    # Any FreeBSD since 9 has virtio: a release newer than osinfo-db knows takes 13.0's entry.
    (r"freebsd(\d+)(?:_64)?Guest", ("freebsd{0}.0", "freebsd{0}", "freebsd13.0")),
    (r"windows2019srvNext_64Guest", ("win2k22",)),
    (r"windows2022srvNext_64Guest", ("win2k22",)),
    (r"windows2019srv_64Guest", ("win2k19",)),
    (r"windows9Server64Guest", ("win2k16",)),
    (r"windows8Server64Guest", ("win2k12r2",)),
    (r"windows7Server64Guest", ("win2k8r2",)),
    (r"windows11_64Guest", ("win11",)),
    (r"windows9(?:_64)?Guest", ("win10",)),
    (r"windows8(?:_64)?Guest", ("win8.1",)),
    (r"windows7(?:_64)?Guest", ("win7",)),
)
# vSphere's "other Linux 5.x" is osinfo-db's generic Linux of about that kernel's years.
_GENERIC_LINUX = {"linux3": "linux2016", "linux4": "linux2018", "linux5": "linux2020", "linux6": "linux2022"}


@dataclass(frozen=True)
class GuestOS:
    """``osinfo_id``: osinfo-db's short id; ``name`` its name; ``virtio_block``/``virtio_net``:
    the OS has drivers for virtio-blk / virtio-net in the box."""

    osinfo_id: str
    name: str
    virtio_block: bool
    virtio_net: bool
    # False when osinfo-db has no entry for the exact release and a nearer one stands in.
    exact: bool = True


def osinfo_dir() -> Path:
    return Path(os.environ.get("OSINFO_SYSTEM_DIR") or "/usr/share/osinfo")


def guest_os(guest_id: str) -> GuestOS | None:
    """osinfo-db's entry for vSphere's ``guest_id``; None when it maps to none, or osinfo-db
    is not installed."""
    database = _database(str(osinfo_dir()))
    if not database.by_short_id:
        return None
    for rank, short_id in enumerate(_short_ids(guest_id)):
        entry_id = database.by_short_id.get(short_id)
        if entry_id is not None:
            devices = database.devices(entry_id)
            return GuestOS(
                osinfo_id=short_id,
                name=database.names.get(entry_id, short_id),
                virtio_block=bool(devices & VIRTIO_BLOCK),
                virtio_net=bool(devices & VIRTIO_NET),
                exact=rank == 0,
            )
    return None


def _short_ids(guest_id: str) -> list[str]:
    for pattern, candidates in _CANDIDATES:
        match = re.fullmatch(pattern, guest_id)
        if match:
            ids = [candidate.format(*match.groups()) for candidate in candidates]
            return [_GENERIC_LINUX.get(short_id, short_id) for short_id in ids]
    return []


@dataclass
class _Database:
    by_short_id: dict[str, str]
    names: dict[str, str]
    own_devices: dict[str, set[str]]
    removed: dict[str, set[str]]
    parents: dict[str, list[str]]

    def devices(self, entry_id: str) -> set[str]:
        """The PCI ids ``entry_id`` supports, its own and inherited (``derives-from``)."""
        seen: set[str] = set()
        found: set[str] = set()
        removed: set[str] = set()
        chain = [entry_id]
        while chain:
            current = chain.pop(0)
            if current in seen:
                continue
            seen.add(current)
            # A nearer entry's supported="false" wins over what an ancestor lists.
            found |= self.own_devices.get(current, set()) - removed
            removed |= self.removed.get(current, set())
            chain.extend(self.parents.get(current, []))
        return found


@cache
def _database(root: str) -> _Database:
    """Every OS entry of the osinfo-db at ``root`` (about 800 files, read once per process)."""
    database = _Database({}, {}, {}, {}, {})
    for path in sorted(Path(root, "os").glob("*/*.xml")):
        try:
            entry = ElementTree.parse(path).getroot().find("os")
        except ElementTree.ParseError:
            continue
        if entry is None or not entry.get("id"):
            continue
        entry_id = entry.get("id", "")
        for short in entry.findall("short-id"):
            database.by_short_id.setdefault((short.text or "").strip(), entry_id)
        database.names[entry_id] = (entry.findtext("name") or "").strip()
        for device in entry.findall("devices/device"):
            pci = (device.get("id") or "").removeprefix("http://pcisig.com/pci/")
            target = database.removed if device.get("supported") == "false" else database.own_devices
            target.setdefault(entry_id, set()).add(pci)
        # libosinfo inherits devices from the OS an entry derives from or clones (CentOS: RHEL).
        relations = [*entry.findall("derives-from"), *entry.findall("clones")]
        database.parents[entry_id] = [parent.get("id", "") for parent in relations]
    return database
