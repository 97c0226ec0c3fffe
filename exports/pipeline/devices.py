"""Per-device facts of the VM being exported, and the rule that ties a lease URL to one device.

vCenter keys each ``HttpNfcLeaseDeviceUrl`` of a disk as ``/<vm>/<ControllerClass><bus>:<unit>``
(e.g. ``/vm-42/ParaVirtualSCSIController0:1``). A disk is only ever identified by all three —
controller class, bus number and unit number — because two disks on different controllers share
unit numbers (SCSI 0:0, SATA 0:0, NVMe 0:0). Every per-disk fact (capacity, bus, unit, label,
boot order, provisioning, datastore) is read from the one device that key names, or the export
stops: guessing would put one disk's facts on another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyVmomi import vim

from exports.pipeline.errors import LeaseError

# Controller class (pyvmomi's type name, as vCenter spells it in lease keys) → (bus, model).
CONTROLLERS: dict[str, tuple[str, str]] = {
    "ParaVirtualSCSIController": ("scsi", "pvscsi"),
    "VirtualLsiLogicController": ("scsi", "lsilogic"),
    "VirtualLsiLogicSASController": ("scsi", "lsilogic-sas"),
    "VirtualBusLogicController": ("scsi", "buslogic"),
    "VirtualAHCIController": ("sata", "ahci"),
    "VirtualNVMEController": ("nvme", "nvme"),
    "VirtualIDEController": ("ide", "ide"),
}

_KEY = re.compile(r"(?P<controller>[A-Za-z]+?)(?P<bus>\d+):(?P<unit>\d+)$")


@dataclass(frozen=True)
class DiskDevice:
    """One ``VirtualDisk`` of the VM, with the controller it hangs on.

    ``capacity_bytes`` is the disk's virtual size; ``boot_order`` is its position among the
    VM's disks at boot (0 boots first); ``provisioning`` is ``thin``, ``thick-lazy``,
    ``thick-eager`` or ``unknown``.
    """

    device_key: int
    label: str
    capacity_bytes: int
    controller_class: str
    bus: str
    controller_model: str
    bus_number: int
    unit_number: int
    provisioning: str
    datastore: str
    file_name: str
    boot_order: int

    @property
    def address(self) -> str:
        """``<ControllerClass><bus>:<unit>``: the tail of this disk's lease key."""
        return f"{self.controller_class}{self.bus_number}:{self.unit_number}"


@dataclass(frozen=True)
class FirmwareFacts:
    """``firmware`` is ``uefi`` or ``bios`` (hyper2kvm's words); ``secure_boot`` only with uefi."""

    firmware: str
    secure_boot: bool


def _class_name(obj: object) -> str:
    return type(obj).__name__.rsplit(".", 1)[-1]


def _provisioning(backing: object) -> str:
    thin = getattr(backing, "thinProvisioned", None)
    if thin:
        return "thin"
    if thin is None and not hasattr(backing, "eagerlyScrub"):
        return "unknown"
    return "thick-eager" if getattr(backing, "eagerlyScrub", False) else "thick-lazy"


def _datastore(backing: object) -> str:
    datastore = getattr(backing, "datastore", None)
    name = getattr(datastore, "name", "") if datastore is not None else ""
    if name:
        return name
    file_name = getattr(backing, "fileName", "") or ""
    return file_name[1:].split("]", 1)[0] if file_name.startswith("[") else ""


def _boot_positions(boot_order: list[object] | None) -> dict[int, int]:
    """Device key → position of the disks the VM's explicit boot order names."""
    positions: dict[int, int] = {}
    for entry in boot_order or []:
        key = getattr(entry, "deviceKey", None)
        if isinstance(entry, vim.vm.BootOptions.BootableDiskDevice) and key is not None:
            positions.setdefault(key, len(positions))
    return positions


def disk_devices(config: vim.vm.ConfigInfo) -> list[DiskDevice]:
    """Every virtual disk of ``config`` with its controller, in device order.

    Boot order: the disks the VM's boot order names come first in that order; the others
    follow in device order (what the firmware does when no order is set).
    """
    devices = list(getattr(config.hardware, "device", None) or [])
    controllers = {d.key: d for d in devices if isinstance(d, vim.vm.device.VirtualController)}
    boot_options = getattr(config, "bootOptions", None)
    explicit = _boot_positions(getattr(boot_options, "bootOrder", None) if boot_options else None)
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    ranked = sorted(range(len(disks)), key=lambda i: (explicit.get(disks[i].key, len(explicit)), i))
    rank = {disks[i].key: position for position, i in enumerate(ranked)}
    facts = []
    for disk in disks:
        controller = controllers.get(disk.controllerKey)
        controller_class = _class_name(controller) if controller is not None else "VirtualController"
        bus, model = CONTROLLERS.get(controller_class, ("unknown", controller_class))
        backing = disk.backing
        facts.append(
            DiskDevice(
                device_key=disk.key,
                label=(disk.deviceInfo.label if disk.deviceInfo else "") or f"disk {disk.key}",
                capacity_bytes=int(disk.capacityInBytes or (disk.capacityInKB or 0) * 1024),
                controller_class=controller_class,
                bus=bus,
                controller_model=model,
                bus_number=int(getattr(controller, "busNumber", 0) or 0),
                unit_number=int(disk.unitNumber or 0),
                provisioning=_provisioning(backing),
                datastore=_datastore(backing),
                file_name=getattr(backing, "fileName", "") or "",
                boot_order=rank[disk.key],
            )
        )
    return facts


def match_disk(lease_key: str, disks: list[DiskDevice]) -> DiskDevice:
    """The one disk a lease deviceUrl key names; LeaseError if none or several do."""
    match = _KEY.search(lease_key.rsplit("/", 1)[-1])
    if match is None:
        raise LeaseError(f"the export lease names a disk the VM does not describe: {lease_key!r}")
    address = (match["controller"], int(match["bus"]), int(match["unit"]))
    found = [d for d in disks if (d.controller_class, d.bus_number, d.unit_number) == address]
    if len(found) != 1:
        what = "no disk" if not found else f"{len(found)} disks"
        raise LeaseError(f"the export lease key {lease_key!r} matches {what} of the VM")
    return found[0]


def firmware_facts(config: vim.vm.ConfigInfo) -> FirmwareFacts:
    if getattr(config, "firmware", None) != "efi":
        return FirmwareFacts("bios", False)
    boot_options = getattr(config, "bootOptions", None)
    return FirmwareFacts("uefi", bool(getattr(boot_options, "efiSecureBootEnabled", False)))


def left_out_devices(config: vim.vm.ConfigInfo) -> list[str]:
    """One warning per device with data that an export does not carry (CD-ROMs, floppies).

    vSphere's ExportVm serves disks (and the NVRAM) only: an ISO or floppy image stays on its
    datastore, and a client-device or passthrough drive has nothing to copy.
    """
    warnings = []
    for device in getattr(config.hardware, "device", None) or []:
        if isinstance(device, vim.vm.device.VirtualCdrom):
            kind = "CD-ROM"
        elif isinstance(device, vim.vm.device.VirtualFloppy):
            kind = "floppy"
        else:
            continue
        label = (device.deviceInfo.label if device.deviceInfo else "") or kind
        backing = device.backing
        image = getattr(backing, "fileName", "") or ""
        if image:
            source = f"image {image}"
        else:
            source = f"{_class_name(backing).removeprefix('Virtual')} backing" if backing else "no backing"
        warnings.append(
            f"{label} ({kind}, {source}) is not exported: vSphere exports only disks and the NVRAM"
        )
    return warnings
