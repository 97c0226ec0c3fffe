"""What HyperSDK knows of a vCenter's VMs: one definition, read by the inventory list, a VM's
details, preflight and the export pipeline. Plain data (no ORM, no pyvmomi objects), so a
record can be cached, sent as JSON (``as_dict``) and built in tests.

Sizes are bytes, memory MiB. Names follow the vSphere API (``powerState``, ``toolsRunningStatus``
…) spelled in snake_case; ``path`` is the inventory path with ``/`` in a name escaped as
vCenter escapes it (``%2f``; see ``inventory.paths``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# power_state values: vSphere's VirtualMachinePowerState, shortened as the CLI's -power takes them.
POWER_STATES = ("on", "off", "suspended")
# connection_state values: vSphere's VirtualMachineConnectionState, as vCenter spells them. Only
# "connected" means vCenter can read the VM's configuration (its .vmx on a datastore it reaches).
CONNECTION_STATES = ("connected", "disconnected", "inaccessible", "invalid", "orphaned")


@dataclass(frozen=True)
class DiskRecord:
    """One virtual disk.

    ``provisioning``: thin, thick-lazy, thick-eager or unknown. ``mode``: vSphere's
    VirtualDiskMode (persistent, independent_persistent, independent_nonpersistent,
    nonpersistent, undoable, append). ``rdm``: None, "physical" or "virtual" (a raw device
    mapping's compatibility mode). ``bus``: scsi, sata, nvme or ide; ``controller``: its model
    (pvscsi, lsilogic, lsilogic-sas, buslogic, ahci, nvme, ide). ``allocated_bytes``: what the
    datastore holds for it (None when vCenter does not say).
    """

    label: str
    capacity_bytes: int
    provisioning: str
    controller: str
    bus: str
    bus_number: int
    unit_number: int
    datastore: str
    datastore_accessible: bool
    mode: str
    rdm: str | None
    file_name: str
    allocated_bytes: int | None = None

    @property
    def independent(self) -> bool:
        return self.mode.startswith("independent")

    @property
    def left_out_by_export(self) -> bool:
        """ExportVm serves neither independent disks nor raw device mappings."""
        return self.independent or self.rdm is not None


@dataclass(frozen=True)
class NicRecord:
    """One network adapter: ``adapter`` is vmxnet3, e1000e, e1000, pcnet32, ...; ``network`` the
    port group or network name. ``connected``: connected now (always False while the VM is
    powered off, as vCenter reports it); ``start_connected``: connected at power-on."""

    label: str
    network: str
    mac: str
    adapter: str
    connected: bool = True
    start_connected: bool = True


@dataclass(frozen=True)
class DriveRecord:
    """A CD-ROM or floppy: ``kind`` "cdrom" or "floppy"; ``image`` the ISO/flp datastore path
    ("" for a client or host device); ``connected`` its connectable state; ``backing`` what
    backs it, in pyvmomi's words (``IsoBackingInfo``, ``RemotePassthroughBackingInfo``; "" for
    no backing)."""

    label: str
    kind: str
    image: str
    connected: bool
    start_connected: bool
    backing: str = ""


@dataclass(frozen=True)
class VMRecord:
    """One VM (or template) as the inventory lists it.

    ``moref``: the managed object id (``vm-42``). ``folder``: the inventory path of its folder.
    ``guest_id``/``guest_full_name``: as configured; ``guest_detected``: what VMware Tools
    report (``""`` when tools do not run). ``firmware``: "bios" or "efi". ``tools_status``:
    vSphere's toolsRunningStatus shortened to "running", "not-running" or "not-installed".
    ``snapshot_count``/``current_snapshot``: the snapshot tree's size and the snapshot the
    current state follows ("" if none). ``estimated_export_bytes``: what the exported disk
    files are expected to hold (see ``inventory.collect``). ``encrypted``: the VM has a
    crypto key (VM encryption). ``connection_state``: one of ``CONNECTION_STATES``; other than
    "connected", vCenter does not know the VM's configuration (its CPUs, disks and NICs read
    as none).
    """

    moref: str
    name: str
    path: str
    datacenter: str
    folder: str
    power_state: str
    guest_id: str
    guest_full_name: str
    guest_detected: str
    cpus: int
    cores_per_socket: int
    memory_mb: int
    firmware: str
    secure_boot: bool
    template: bool
    encrypted: bool
    cbt_enabled: bool
    tools_status: str
    snapshot_count: int
    current_snapshot: str
    estimated_export_bytes: int
    bios_uuid: str = ""
    instance_uuid: str = ""
    disks: tuple[DiskRecord, ...] = ()
    nics: tuple[NicRecord, ...] = ()
    drives: tuple[DriveRecord, ...] = ()
    connection_state: str = "connected"

    def as_dict(self) -> dict[str, Any]:
        """The JSON the API and ``hyperctl vms info -json`` answer: every field, lists for tuples."""
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """A list row: the VM without its device lists, plus their counts."""
        row = {k: v for k, v in self.as_dict().items() if k not in ("disks", "nics", "drives")}
        row["disk_count"] = len(self.disks)
        row["nic_count"] = len(self.nics)
        return row


@dataclass(frozen=True)
class VMPage:
    """One page of a filtered inventory: ``count`` VMs match in all; ``cached_at`` is when the
    inventory was read from vCenter (ISO 8601, UTC)."""

    vcenter: str
    count: int
    page: int
    page_size: int
    cached_at: str
    results: list[VMRecord] = field(default_factory=list)
