"""``DomainPlan``: every choice the libvirt domain makes for a VM, and why, before any XML.

Built from the VM's inventory record (``inventory.records.VMRecord``) and its converted disks.
The rules (README, "The libvirt domain"):

- name: ``names.domain_name`` of the VM's name; the VM's own name goes in ``<title>``;
- uuid: the VM's BIOS UUID (``config.uuid``), which the guest sees as its SMBIOS system UUID;
- memory (MiB) and vCPUs as sockets × cores per socket × 1 thread;
- machine: q35; firmware: bios, or efi (libvirt's auto-selection of OVMF) with secure boot as
  the VM had it;
- disk bus: ``-disk-bus``, else virtio when osinfo-db says the guest OS has virtio drivers,
  else sata; disks keep the VM's boot order (the first boots);
- NIC model by the same rule (virtio or e1000e); each NIC keeps its MAC; its network comes
  from ``-network-map`` (unmapped: libvirt's ``default`` network and a warning);
- always: a serial console, VNC graphics on localhost, a virtio RNG, the QEMU guest agent
  channel; an empty SATA CD-ROM drive where the VM had a CD-ROM.
"""

from __future__ import annotations

import re
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from inventory.paths import unescape_name
from inventory.records import VMRecord
from libvirt_domain.names import domain_name
from libvirt_domain.networks import DEFAULT_NETWORK, NetworkTarget
from libvirt_domain.osinfo import GuestOS, guest_os

__all__ = ["DomainDisk", "DomainPlan", "PlannedDisk", "PlannedNic", "plan_domain"]

MACHINE = "q35"
# What XML 1.0 cannot hold (https://www.w3.org/TR/xml/#charsets): C0 controls but tab, newline and
# carriage return, lone surrogates, U+FFFE and U+FFFF.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What QEMU 7.2 (Debian 12) accepts on q35; QEMU 8.1+ with KVM takes up to 1024.
MAX_Q35_VCPUS = 288


@dataclass(frozen=True)
class DomainDisk:
    """A converted disk given to the plan: ``path`` absolute, ``format`` qemu's (qcow2, raw,
    vdi), ``boot_order`` the VM's (0 boots first)."""

    path: str
    format: str
    boot_order: int


@dataclass(frozen=True)
class PlannedDisk:
    """A disk as the domain attaches it: ``target`` the guest device name (vda, sda …),
    ``boot`` libvirt's ``<boot order>`` (1 first)."""

    path: str
    format: str
    bus: str
    target: str
    boot: int


@dataclass(frozen=True)
class PlannedNic:
    """A NIC: the VM's ``mac``, its vSphere ``network``, where it goes (``target``) and
    ``mapped`` (False: the network was not in ``-network-map``)."""

    mac: str
    network: str
    target: NetworkTarget
    model: str
    mapped: bool
    connected: bool = True


@dataclass(frozen=True)
class DomainPlan:
    """Everything the domain XML says. ``memory_mib``; ``firmware`` "bios" or "efi";
    ``disk_bus_reason``/``nic_model_reason``: one sentence each, for the report; ``warnings``:
    one line each (an unmapped network, a guest OS osinfo-db does not know …)."""

    name: str
    title: str
    uuid: str
    memory_mib: int
    vcpus: int
    sockets: int
    cores: int
    machine: str
    firmware: str
    secure_boot: bool
    disk_bus: str
    disk_bus_reason: str
    nic_model: str
    nic_model_reason: str
    osinfo_id: str
    disks: tuple[PlannedDisk, ...] = ()
    nics: tuple[PlannedNic, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # Windows keeps its hardware clock in local time (as VMware presents it); the rest in UTC.
    clock: str = "utc"
    # An empty SATA CD-ROM drive ("" for none), where the VM had a CD-ROM: where the virtio
    # drivers' ISO goes (virsh change-media), as the VM's own image was not exported.
    cdrom_target: str = ""

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for nic in document["nics"]:
            nic["target"] = str(NetworkTarget(**nic["target"]))
        return document


def plan_domain(
    record: VMRecord,
    disks: Sequence[DomainDisk],
    *,
    disk_bus: str = "auto",
    network_map: Mapping[str, NetworkTarget] | None = None,
) -> DomainPlan:
    """The plan for ``record``'s VM with ``disks`` (any order; sorted by boot order here).

    ``disk_bus``: auto, virtio, sata or scsi; ``network_map``: vSphere network name → target.
    """
    warnings: list[str] = []
    guest = guest_os(record.guest_id)
    bus, bus_reason = _disk_bus(disk_bus, guest, record.guest_id)
    model, model_reason = _nic_model(guest, record.guest_id)
    sockets, cores = _topology(record, warnings)
    bios_uuid = _uuid(record.bios_uuid)
    if not bios_uuid:
        warnings.append(
            "vCenter gave no BIOS UUID: libvirt makes one up, so the guest sees a new system UUID"
        )
    ordered = sorted(disks, key=lambda disk: disk.boot_order)
    return DomainPlan(
        # vCenter keeps a "/" in a name as "%2f": the domain is named as a person reads it.
        name=domain_name(unescape_name(record.name), bios_uuid),
        title=_title(unescape_name(record.name)),
        uuid=bios_uuid,
        memory_mib=max(record.memory_mb, 1),
        vcpus=sockets * cores,
        sockets=sockets,
        cores=cores,
        machine=MACHINE,
        firmware="efi" if record.firmware == "efi" else "bios",
        secure_boot=record.firmware == "efi" and record.secure_boot,
        disk_bus=bus,
        disk_bus_reason=bus_reason,
        nic_model=model,
        nic_model_reason=model_reason,
        osinfo_id=guest.osinfo_id if guest else "",
        disks=tuple(
            PlannedDisk(disk.path, disk.format, bus, _device_name(bus, index), index + 1)
            for index, disk in enumerate(ordered)
        ),
        nics=tuple(_nics(record, model, network_map or {}, warnings)),
        warnings=tuple(warnings),
        clock="localtime" if record.guest_id.lower().startswith("win") else "utc",
        cdrom_target=_cdrom_target(record, bus, len(ordered)),
    )


def _disk_bus(asked: str, guest: GuestOS | None, guest_id: str) -> tuple[str, str]:
    if asked != "auto":
        return asked, f"{asked}: as asked (disk bus {asked})"
    if guest is None:
        return (
            "sata",
            f"sata: osinfo-db does not know the guest OS {guest_id!r}; every OS has a SATA (AHCI) driver",
        )
    if guest.virtio_block:
        return "virtio", f"virtio: osinfo-db says {_entry(guest, guest_id)} has virtio-blk drivers"
    return "sata", (
        f"sata: osinfo-db lists no virtio-blk driver for {_entry(guest, guest_id)}; install the "
        "virtio drivers in the guest (virtio-win for Windows), then choose disk bus virtio"
    )


def _nic_model(guest: GuestOS | None, guest_id: str) -> tuple[str, str]:
    if guest is None:
        return "e1000e", f"e1000e: osinfo-db does not know the guest OS {guest_id!r}"
    if guest.virtio_net:
        return "virtio", f"virtio: osinfo-db says {_entry(guest, guest_id)} has virtio-net drivers"
    return "e1000e", f"e1000e: osinfo-db lists no virtio-net driver for {_entry(guest, guest_id)}"


def _entry(guest: GuestOS, guest_id: str) -> str:
    if guest.exact:
        return f"{guest.name} ({guest.osinfo_id})"
    return f"{guest.name} ({guest.osinfo_id}, its nearest entry for {guest_id})"


def _topology(record: VMRecord, warnings: list[str]) -> tuple[int, int]:
    """(sockets, cores per socket), one thread each, as many vCPUs as the VM had."""
    cpus = max(record.cpus, 1)
    cores = record.cores_per_socket if record.cores_per_socket > 0 else 1
    if cpus > MAX_Q35_VCPUS:
        warnings.append(
            f"{cpus} vCPUs: QEMU 7.2 starts a q35 guest with at most {MAX_Q35_VCPUS} (newer QEMU with KVM: "
            "more); lower <vcpu> if it refuses to start"
        )
    if cpus % cores:
        # One socket: Windows client editions use at most two, so many sockets would idle CPUs.
        warnings.append(
            f"{cpus} vCPUs do not split into sockets of {cores} cores: the domain has 1 socket of {cpus} cores"
        )
        return 1, cpus
    return cpus // cores, cores


def _uuid(text: str) -> str:
    try:
        return str(uuid_module.UUID(text.strip()))
    except ValueError:
        return ""


def _title(name: str) -> str:
    """libvirt refuses a newline in a title; other control characters are no use there either,
    and XML cannot hold some characters at all."""
    return NOT_XML.sub(" ", re.sub(r"[\x00-\x1f\x7f]+", " ", name))


def _cdrom_target(record: VMRecord, bus: str, disks: int) -> str:
    if not any(drive.kind == "cdrom" for drive in record.drives):
        return ""
    # On SATA as sdX after the disks when they are on SATA (or SCSI, whose names it shares).
    return _device_name("sata", disks if bus in ("sata", "scsi") else 0)


def _device_name(bus: str, index: int) -> str:
    """vda, vdb … vdz, vdaa … (sda … for sata and scsi), as the Linux kernel names disks."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return ("vd" if bus == "virtio" else "sd") + letters


def _mapped(network_map: Mapping[str, NetworkTarget], network: str) -> NetworkTarget | None:
    """The map's target for ``network``: by its exact name, else ignoring spaces at either end
    ("VM Network = default" means "VM Network")."""
    for spelled in dict.fromkeys((network, unescape_name(network))):  # as vCenter keeps it, as read
        if spelled in network_map:
            return network_map[spelled]
    loose = [
        target
        for name, target in network_map.items()
        if name.strip() in (network.strip(), unescape_name(network).strip())
    ]
    return loose[0] if len(loose) == 1 else None


_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


def _nics(
    record: VMRecord, model: str, network_map: Mapping[str, NetworkTarget], warnings: list[str]
) -> list[PlannedNic]:
    nics = []
    for nic in record.nics:
        mac = nic.mac.strip().lower().replace("-", ":")
        if not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1:
            warnings.append(f"{nic.label}: MAC {nic.mac!r} is not a unicast MAC; libvirt assigns one")
            mac = ""
        target = _mapped(network_map, nic.network)
        if target is None:
            warnings.append(
                f"{nic.label} ({nic.mac}): vSphere network {nic.network!r} is not in the network map; "
                f"it joins libvirt's {DEFAULT_NETWORK!r} network"
            )
        nics.append(
            PlannedNic(
                mac=mac,
                network=nic.network,
                target=target or NetworkTarget("network", DEFAULT_NETWORK),
                model=model,
                mapped=target is not None,
                # What the VM does at power-on: a powered-off VM's NICs all read disconnected.
                connected=nic.start_connected,
            )
        )
    return nics
