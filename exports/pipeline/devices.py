"""Per-device facts of the VM being exported, and the rule that ties a lease URL to one device.

vCenter keys each ``HttpNfcLeaseDeviceUrl`` of a disk as ``/<vm>/<ControllerClass><bus>:<unit>``
(e.g. ``/vm-42/ParaVirtualSCSIController0:1``). A disk is only ever identified by all three —
controller class, bus number and unit number — because two disks on different controllers share
unit numbers (SCSI 0:0, SATA 0:0, NVMe 0:0). Every per-disk fact (capacity, bus, unit, label,
boot order, provisioning, datastore) is read from the one device that key names, or the export
stops: guessing would put one disk's facts on another.

The same facts describe the VM in the inventory (``inventory.collect``): these functions read
only the device list they are given and never call vCenter, so they serve a whole inventory
retrieved at once as well as one VM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
    ``thick-eager`` or ``unknown``. ``mode`` is vSphere's VirtualDiskMode (``persistent``,
    ``independent_persistent`` ...); ``rdm`` is None, or ``physical``/``virtual`` for a raw
    device mapping; ``datastore_ref`` the datastore's managed object id (``datastore-12``, ""
    when the backing does not name one).
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
    mode: str = "persistent"
    rdm: str | None = None
    datastore_ref: str = ""

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


def _datastore_ref(backing: object) -> str:
    datastore = getattr(backing, "datastore", None)
    return getattr(datastore, "_moId", "") or "" if datastore is not None else ""


def _datastore(backing: object, names: Mapping[str, str] | None) -> str:
    """The datastore's name: from ``names`` (managed object id → name) when given, else the
    ``[name]`` a backing's file name starts with. Reading ``backing.datastore.name`` would be a
    vCenter call per disk."""
    ref = _datastore_ref(backing)
    if names is not None and ref in names:
        return names[ref]
    file_name = getattr(backing, "fileName", "") or ""
    return file_name[1:].split("]", 1)[0] if file_name.startswith("[") else ""


def _rdm(backing: object) -> str | None:
    if not isinstance(backing, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo):
        return None
    return "physical" if backing.compatibilityMode == "physicalMode" else "virtual"


def _boot_positions(boot_order: list[object] | None) -> dict[int, int]:
    """Device key → position of the disks the VM's explicit boot order names."""
    positions: dict[int, int] = {}
    for entry in boot_order or []:
        key = getattr(entry, "deviceKey", None)
        if isinstance(entry, vim.vm.BootOptions.BootableDiskDevice) and key is not None:
            positions.setdefault(key, len(positions))
    return positions


def disk_devices(config: vim.vm.ConfigInfo, datastores: Mapping[str, str] | None = None) -> list[DiskDevice]:
    """Every virtual disk of ``config`` with its controller, in device order.

    Boot order: the disks the VM's boot order names come first in that order; the others
    follow in device order (what the firmware does when no order is set). ``datastores``:
    datastore managed object id → name, when the caller has read them (see ``_datastore``).
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
                datastore=_datastore(backing, datastores),
                file_name=getattr(backing, "fileName", "") or "",
                boot_order=rank[disk.key],
                mode=getattr(backing, "diskMode", "") or "persistent",
                rdm=_rdm(backing),
                datastore_ref=_datastore_ref(backing),
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


@dataclass(frozen=True)
class DriveDevice:
    """A CD-ROM or floppy drive: ``kind`` ``cdrom`` or ``floppy``; ``image`` the ISO or floppy
    image's datastore path ("" for a host or client device); ``backing`` what backs it when
    not an image, in pyvmomi's words (``RemotePassthroughBackingInfo``; "" for no backing)."""

    label: str
    kind: str
    image: str
    backing: str
    connected: bool
    start_connected: bool

    def left_out_warning(self) -> str:
        return left_out_warning(self.label, self.kind, self.image, self.backing)


def left_out_warning(label: str, kind: str, image: str, backing: str) -> str:
    """The one line saying the export leaves a drive out (``kind`` cdrom or floppy)."""
    source = f"image {image}" if image else (f"{backing} backing" if backing else "no backing")
    what = "CD-ROM" if kind == "cdrom" else "floppy"
    return f"{label} ({what}, {source}) is not exported: vSphere exports only disks and the NVRAM"


def drive_devices(config: vim.vm.ConfigInfo) -> list[DriveDevice]:
    """Every CD-ROM and floppy drive of ``config``, in device order."""
    drives = []
    for device in getattr(config.hardware, "device", None) or []:
        if isinstance(device, vim.vm.device.VirtualCdrom):
            kind, default_label = "cdrom", "CD-ROM"
        elif isinstance(device, vim.vm.device.VirtualFloppy):
            kind, default_label = "floppy", "floppy"
        else:
            continue
        backing = device.backing
        connectable = device.connectable
        drives.append(
            DriveDevice(
                label=(device.deviceInfo.label if device.deviceInfo else "") or default_label,
                kind=kind,
                image=getattr(backing, "fileName", "") or "",
                backing=_class_name(backing).removeprefix("Virtual") if backing else "",
                connected=bool(connectable and connectable.connected),
                start_connected=bool(connectable and connectable.startConnected),
            )
        )
    return drives


def left_out_devices(config: vim.vm.ConfigInfo) -> list[str]:
    """One warning per device with data that an export does not carry (CD-ROMs, floppies).

    vSphere's ExportVm serves disks (and the NVRAM) only: an ISO or floppy image stays on its
    datastore, and a client-device or passthrough drive has nothing to copy.
    """
    return [drive.left_out_warning() for drive in drive_devices(config)]
