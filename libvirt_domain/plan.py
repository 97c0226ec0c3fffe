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
  channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from inventory.records import VMRecord
from libvirt_domain.networks import NetworkTarget

__all__ = ["DomainDisk", "DomainPlan", "PlannedDisk", "PlannedNic", "plan_domain"]

MACHINE = "q35"


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
    """The plan for ``record``'s VM with ``disks`` (any order; sorted by boot order here)."""
    raise NotImplementedError
