"""Read a vCenter's VMs into ``VMRecord``s: the whole inventory in one PropertyCollector retrieval.

``collect_vms`` asks vCenter once (``RetrievePropertiesEx``, then ``ContinueRetrievePropertiesEx``
while vCenter pages its answer) for two ContainerViews of the root folder: every VirtualMachine
with only the properties a record needs (``VM_PROPERTIES``), and the inventory's structure
(folders, datacenters and vApps with their names and parents, datastores with their
accessibility, distributed port groups with their names). Paths, datastores and networks are then
joined in memory: the number of calls does not grow with the number of VMs.

For a list shown a page at a time, ``index_vms`` reads every VM's ``VMEntry`` (what the list
filters and orders by: name, place, power state, guest) in one retrieval of a few plain
properties, decoded by the C XML parser (``inventory.soap``), and ``read_vms`` the full records
of one page's VMs in one more: pyvmomi decodes every VM's device list at 3 ms or more a VM
(``collect_vms`` of 5,000 VMs took 15 to 50 s on two cores), a page of 50 in about 0.15 s.

``read_vm`` reads one VM the same way (one retrieval of the VM, its parents up to the root, its
datastores and networks) and maps it with the same function, so a VM's facts have one
definition whichever door asks.

The estimate of a VM's export size (``estimated_export_bytes``), in bytes: the sum, over the
disks ExportVm serves (not independent, not raw device mappings), of what the datastore holds
for the disk's chain (base and snapshot deltas, from ``layoutEx``) capped at the disk's
capacity; a disk whose layout vCenter does not give (or gives as 0 bytes, which no real disk
is) counts its capacity, thin or thick. The streamOptimized VMDKs ExportVm writes are
compressed, so the estimate is an upper bound: what free space must be there for the download.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from pyVmomi import vim, vmodl

from exports.pipeline.devices import disk_devices, drive_devices, firmware_facts
from exports.pipeline.errors import UnreadableAnswer
from inventory.paths import escape_name, join_path
from inventory.records import CONNECTION_STATES, DiskRecord, DriveRecord, NicRecord, VMRecord
from inventory.soap import NotPlain, check_pages, retrieve_plain

# What a record is made of: nothing more is transferred per VM.
VM_PROPERTIES = (
    "name",
    "parent",
    "parentVApp",
    "runtime.powerState",
    "runtime.connectionState",
    "config.template",
    "config.guestId",
    "config.guestFullName",
    "guest.guestFullName",
    "guest.toolsRunningStatus",
    "guest.toolsStatus",
    "config.hardware.numCPU",
    "config.hardware.numCoresPerSocket",
    "config.hardware.memoryMB",
    "config.firmware",
    "config.bootOptions",
    "config.hardware.device",
    "config.changeTrackingEnabled",
    "config.keyId",
    "config.uuid",
    "config.instanceUuid",
    "snapshot",
    "layoutEx.file",
    "layoutEx.disk",
)
# What the list filters and orders by (``VMEntry``): a few cheap properties per VM.
LISTING_PROPERTIES = (
    "name",
    "parent",
    "parentVApp",
    "runtime.powerState",
    "config.guestId",
    "config.guestFullName",
    "guest.guestFullName",
    "guest.toolsRunningStatus",
)
# The structure that names a VM's place and its disks' datastores: type → properties.
STRUCTURE_PROPERTIES: dict[type, tuple[str, ...]] = {
    vim.Folder: ("name", "parent"),
    vim.Datacenter: ("name", "parent"),
    vim.VirtualApp: ("name", "parentFolder", "parentVApp"),
    vim.Datastore: ("name", "summary.accessible"),
    vim.dvs.DistributedVirtualPortgroup: ("name", "key"),
}
# Objects per answer asked of vCenter (RetrieveOptions.maxObjects). None: as many as vCenter's own
# policy sends in one; it still pages a large inventory, and ContinueRetrievePropertiesEx reads
# the rest. A bound of our own only adds round trips (the list needs every VM anyway).
PAGE_OBJECTS: int | None = None

_POWER = {"poweredOn": "on", "poweredOff": "off", "suspended": "suspended"}
_TOOLS_RUNNING = {"guestToolsRunning", "guestToolsExecutingScripts"}


@dataclass(frozen=True)
class VMEntry:
    """A VM as the inventory list filters and orders it (the record's fields of those names)."""

    moref: str
    name: str
    path: str
    folder: str
    power_state: str
    guest_id: str
    guest_full_name: str
    guest_detected: str

    @classmethod
    def of(cls, record: VMRecord) -> VMEntry:
        """The entry a full record makes: the list's fields, read from it."""
        return cls(**{f.name: getattr(record, f.name) for f in fields(cls)})


@dataclass
class Structure:
    """The inventory around the VMs, by managed object id: enough to name a VM's folder path,
    datacenter, disks' datastores and networks without asking vCenter again."""

    root: str
    names: dict[str, str] = field(default_factory=dict)
    parents: dict[str, str | None] = field(default_factory=dict)
    datacenters: set[str] = field(default_factory=set)
    datastore_names: dict[str, str] = field(default_factory=dict)
    datastore_accessible: dict[str, bool] = field(default_factory=dict)
    portgroups: dict[str, str] = field(default_factory=dict)  # port group key → name
    _paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _joined: dict[str | None, str] = field(default_factory=dict)

    def add(self, obj: Any, props: Mapping[str, Any]) -> None:
        moref = obj._moId
        if isinstance(obj, vim.Datastore):
            self.datastore_names[moref] = props.get("name", "")
            self.datastore_accessible[moref] = bool(props.get("summary.accessible", True))
        elif isinstance(obj, vim.dvs.DistributedVirtualPortgroup):
            self.portgroups[props.get("key") or moref] = props.get("name", "")
        elif isinstance(obj, (vim.Folder, vim.Datacenter, vim.VirtualApp)):
            self.names[moref] = props.get("name", "")
            parent = props.get("parent") or props.get("parentVApp") or props.get("parentFolder")
            self.parents[moref] = parent._moId if parent is not None else None
            if isinstance(obj, vim.Datacenter):
                self.datacenters.add(moref)

    def path_of(self, moref: str | None) -> str:
        """The inventory path of a folder (``/dc/vm/prod``; ``/`` for the root), made once per folder."""
        if moref not in self._joined:
            self._joined[moref] = join_path(self.names_to(moref))
        return self._joined[moref]

    def names_to(self, moref: str | None) -> tuple[str, ...]:
        """The names from below the root folder down to ``moref`` (``("dc", "vm", "prod")``)."""
        if moref is None or moref == self.root or moref not in self.names:
            return ()
        if moref not in self._paths:
            self._paths[moref] = (*self.names_to(self.parents.get(moref)), self.names[moref])
        return self._paths[moref]

    def datacenter_of(self, moref: str | None) -> str:
        seen = 0
        while moref is not None and moref in self.names and seen < 256:  # a cycle never loops
            if moref in self.datacenters:
                return self.names[moref]
            moref, seen = self.parents.get(moref), seen + 1
        return ""


def collect_vms(service_instance: Any) -> list[VMRecord]:
    """Every VM and template of the vCenter, ordered by path; one retrieval (paged by vCenter).

    Raises what pyvmomi raises for a failed call (the service maps it to one line).
    """
    root, objects = _retrieve_views(service_instance, VM_PROPERTIES, plain=False)
    with _reading():
        structure, vms = _split(root, objects)
        records = [vm_record(moref, props, structure) for moref, props in vms]
    return sorted(records, key=lambda record: (record.path, record.moref))


def index_vms(service_instance: Any) -> tuple[list[VMEntry], Structure]:
    """Every VM's ``VMEntry`` ordered by path, and the inventory's structure; one retrieval."""
    root, objects = _retrieve_views(service_instance, LISTING_PROPERTIES, plain=True)
    with _reading():
        structure, vms = _split(root, objects)
        entries = [vm_entry(moref, props, structure) for moref, props in vms]
    return sorted(entries, key=lambda entry: (entry.path, entry.moref)), structure


def _retrieve_views(
    service_instance: Any, vm_properties: Iterable[str], *, plain: bool
) -> tuple[str, list[tuple[Any, dict[str, Any]]]]:
    """The root folder's id, and ``vm_properties`` of every VM with the structure's properties.
    ``plain``: the properties are plain values, read by the fast decoder (``inventory.soap``)."""
    content = service_instance.RetrieveContent()
    views = content.viewManager
    vm_view = views.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    structure_view = views.CreateContainerView(content.rootFolder, list(STRUCTURE_PROPERTIES), True)
    try:
        through_view = vmodl.query.PropertyCollector.TraversalSpec(
            name="view", type=vim.view.ContainerView, path="view", skip=False
        )
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[through_view])
                for view in (vm_view, structure_view)
            ],
            propSet=_property_specs({vim.VirtualMachine: vm_properties, **STRUCTURE_PROPERTIES}),
        )
        if plain:
            try:
                return content.rootFolder._moId, retrieve_plain(content.propertyCollector, spec, _options())
            except NotPlain:  # a vCenter answering with a structure where we expect a value
                pass
        return content.rootFolder._moId, retrieve(content.propertyCollector, spec)
    finally:
        for view in (vm_view, structure_view):
            try:
                view.DestroyView()
            except Exception:  # noqa: BLE001 - the session may be gone; the view goes with it
                pass


def read_vm(service_instance: Any, vm: vim.VirtualMachine) -> VMRecord:
    """One VM's record (see ``read_vms``). Raises vmodl.fault.ManagedObjectNotFound if it is gone."""
    records = read_vms(service_instance, [vm])
    if not records:
        raise vmodl.fault.ManagedObjectNotFound(obj=vm, msg=f"{vm._moId} is gone")
    return records[0]


def read_vms(service_instance: Any, vms: Iterable[vim.VirtualMachine]) -> list[VMRecord]:
    """The records of ``vms`` (those that still exist, ordered by path): one retrieval of the
    VMs, their parents up to the root folder, their datastores and their networks."""
    content = service_instance.RetrieveContent()
    traversal = vmodl.query.PropertyCollector.TraversalSpec
    select = vmodl.query.PropertyCollector.SelectionSpec
    up = [
        select(name="folderUp"),
        select(name="datacenterUp"),
        select(name="vappUp"),
        select(name="vappFolder"),
    ]
    traversals = [
        traversal(name="vmParent", type=vim.VirtualMachine, path="parent", selectSet=up),
        traversal(name="vmVApp", type=vim.VirtualMachine, path="parentVApp", selectSet=up),
        traversal(name="vmDatastores", type=vim.VirtualMachine, path="datastore"),
        traversal(name="vmNetworks", type=vim.VirtualMachine, path="network"),
        traversal(name="folderUp", type=vim.Folder, path="parent", selectSet=up),
        traversal(name="datacenterUp", type=vim.Datacenter, path="parent", selectSet=up),
        traversal(name="vappUp", type=vim.VirtualApp, path="parentVApp", selectSet=up),
        traversal(name="vappFolder", type=vim.VirtualApp, path="parentFolder", selectSet=up),
    ]
    object_specs = [
        vmodl.query.PropertyCollector.ObjectSpec(obj=vm, skip=False, selectSet=traversals) for vm in vms
    ]
    if not object_specs:
        return []
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=object_specs,
        propSet=_property_specs({vim.VirtualMachine: VM_PROPERTIES, **STRUCTURE_PROPERTIES}),
    )
    objects = retrieve(content.propertyCollector, spec)
    with _reading():
        structure, found = _split(content.rootFolder._moId, objects)
        records = [vm_record(moref, props, structure) for moref, props in found]
    return sorted(records, key=lambda record: (record.path, record.moref))


def retrieve(property_collector: Any, spec: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Every object ``spec`` selects as (managed object, {property path: value}):
    RetrievePropertiesEx, then each page vCenter kept back (ContinueRetrievePropertiesEx)."""
    with _reading():  # pyvmomi decodes as it calls: an unknown type is its KeyError
        result = property_collector.RetrievePropertiesEx(specSet=[spec], options=_options())
    objects: list[tuple[Any, dict[str, Any]]] = []
    pages = 1
    while result is not None:
        objects.extend(
            (o.obj, {prop.name: prop.val for prop in o.propSet or []}) for o in result.objects or []
        )
        if not result.token:
            break
        check_pages(pages)  # a vCenter that keeps sending a token must not hang the list
        with _reading():
            result = property_collector.ContinueRetrievePropertiesEx(token=result.token)
        pages += 1
    return objects


@contextmanager
def _reading() -> Iterator[None]:
    """Mapping vCenter's answer to records: a value of a shape no vCenter sends (a string where
    a reference belongs, a number that is none) is an answer that cannot be read, one line."""
    try:
        yield
    except (UnreadableAnswer, NotPlain):
        raise
    except KeyError as exc:  # pyvmomi's lookup of a type name it does not know
        raise UnreadableAnswer(f"a type this API version does not know ({str(exc)[:100]})") from None
    except (AttributeError, TypeError, ValueError) as exc:
        what = " ".join(str(exc).split())[:200]
        raise UnreadableAnswer(f"an unexpected value ({type(exc).__name__}: {what})") from None


def _options() -> Any:
    return vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=PAGE_OBJECTS)


def _property_specs(properties: Mapping[type, Iterable[str]]) -> list[Any]:
    return [
        vmodl.query.PropertyCollector.PropertySpec(type=kind, pathSet=list(paths), all=False)
        for kind, paths in properties.items()
    ]


def _split(
    root: str, objects: list[tuple[Any, dict[str, Any]]]
) -> tuple[Structure, list[tuple[str, dict[str, Any]]]]:
    """The retrieved structure, and each VM's (managed object id, {property path: value})."""
    structure = Structure(root=root)
    vms = []
    for obj, props in objects:
        if isinstance(obj, vim.VirtualMachine):
            vms.append((obj._moId, props))
        else:
            structure.add(obj, props)
    return structure, vms


def vm_entry(moref: str, props: Mapping[str, Any], structure: Structure) -> VMEntry:
    """The list's view of a VM, from its ``LISTING_PROPERTIES`` (the same words as ``vm_record``)."""
    path, folder, _ = _place(props, structure)
    return VMEntry(
        moref=moref,
        name=props.get("name", ""),
        path=path,
        folder=folder,
        power_state=_power(props),
        guest_id=props.get("config.guestId") or "",
        guest_full_name=props.get("config.guestFullName") or "",
        guest_detected=_guest_detected(props),
    )


def _place(props: Mapping[str, Any], structure: Structure) -> tuple[str, str, str]:
    """The VM's inventory path, its folder's path (``/dc/vm/prod``) and its datacenter's name."""
    parent = props.get("parent") or props.get("parentVApp")
    parent_ref = parent._moId if parent is not None else None
    folder = structure.path_of(parent_ref)
    path = f"{folder.rstrip('/')}/{escape_name(props.get('name', ''))}"
    return path, folder, structure.datacenter_of(parent_ref)


def _power(props: Mapping[str, Any]) -> str:
    return _POWER.get(str(props.get("runtime.powerState", "")), "off")


def _guest_detected(props: Mapping[str, Any]) -> str:
    """What VMware Tools say the guest is; "" when they do not run (what they said is stale)."""
    if props.get("guest.toolsRunningStatus") not in _TOOLS_RUNNING:
        return ""
    return props.get("guest.guestFullName") or ""


def vm_record(moref: str, props: Mapping[str, Any], structure: Structure) -> VMRecord:
    """One VM's record from its retrieved ``VM_PROPERTIES`` (the one mapping of vCenter's words
    to the record's). A property vCenter left out (unset, or not readable) takes its empty value."""
    path, folder, datacenter = _place(props, structure)
    devices = list(props.get("config.hardware.device") or [])
    boot_options = props.get("config.bootOptions")
    firmware = props.get("config.firmware") or "bios"
    config = vim.vm.ConfigInfo(
        hardware=vim.vm.VirtualHardware(device=devices), bootOptions=boot_options, firmware=firmware
    )
    boot = firmware_facts(config)
    allocated = _allocated_bytes(props.get("layoutEx.file"), props.get("layoutEx.disk"))
    disks = tuple(
        DiskRecord(
            label=disk.label,
            capacity_bytes=disk.capacity_bytes,
            provisioning=disk.provisioning,
            controller=disk.controller_model,
            bus=disk.bus,
            bus_number=disk.bus_number,
            unit_number=disk.unit_number,
            datastore=disk.datastore,
            datastore_accessible=structure.datastore_accessible.get(disk.datastore_ref, True),
            mode=disk.mode,
            rdm=disk.rdm,
            file_name=disk.file_name,
            allocated_bytes=allocated.get(disk.device_key),
        )
        for disk in disk_devices(config, structure.datastore_names)
    )
    drives = tuple(
        DriveRecord(
            label=drive.label,
            kind=drive.kind,
            image=drive.image,
            connected=drive.connected,
            start_connected=drive.start_connected,
            backing=drive.backing,
        )
        for drive in drive_devices(config)
    )
    snapshot_count, current_snapshot = _snapshots(props.get("snapshot"))
    return VMRecord(
        moref=moref,
        name=props.get("name", ""),
        path=path,
        datacenter=datacenter,
        folder=folder,
        power_state=_power(props),
        guest_id=props.get("config.guestId") or "",
        guest_full_name=props.get("config.guestFullName") or "",
        guest_detected=_guest_detected(props),
        cpus=int(props.get("config.hardware.numCPU") or 0),
        cores_per_socket=int(props.get("config.hardware.numCoresPerSocket") or 1),
        memory_mb=int(props.get("config.hardware.memoryMB") or 0),
        firmware="efi" if boot.firmware == "uefi" else "bios",  # the record says vSphere's word
        secure_boot=boot.secure_boot,
        template=bool(props.get("config.template")),
        encrypted=props.get("config.keyId") is not None,
        cbt_enabled=bool(props.get("config.changeTrackingEnabled")),
        tools_status=_tools_status(props.get("guest.toolsStatus"), props.get("guest.toolsRunningStatus")),
        snapshot_count=snapshot_count,
        current_snapshot=current_snapshot,
        estimated_export_bytes=estimated_export_bytes(disks),
        bios_uuid=props.get("config.uuid") or "",
        instance_uuid=props.get("config.instanceUuid") or "",
        disks=disks,
        nics=tuple(_nics(devices, structure)),
        drives=drives,
        connection_state=_connection_state(props),
    )


def _connection_state(props: Mapping[str, Any]) -> str:
    """vCenter's word for whether it reaches the VM; a state this code does not know is not
    "connected" (vCenter would not say so of a VM it reads)."""
    state = str(props.get("runtime.connectionState") or "connected")
    return state if state in CONNECTION_STATES else "invalid"


def estimated_export_bytes(disks: Iterable[DiskRecord]) -> int:
    """Bytes the export's disk files hold at most (see the module's docstring)."""
    total = 0
    for disk in disks:
        if disk.left_out_by_export:
            continue
        allocated = disk.allocated_bytes
        total += disk.capacity_bytes if allocated is None else min(allocated, disk.capacity_bytes)
    return total


def _allocated_bytes(files: list[Any] | None, disk_layouts: list[Any] | None) -> dict[int, int]:
    """Disk device key → bytes its chain's files take on their datastores (layoutEx); disks
    whose files all show 0 bytes are left out (vCenter has not measured them)."""
    sizes = {f.key: int(f.size or 0) for f in files or []}
    allocated = {}
    for layout in disk_layouts or []:
        total = sum(sizes.get(key, 0) for unit in layout.chain or [] for key in unit.fileKey or [])
        if total > 0:
            allocated[layout.key] = total
    return allocated


def _snapshots(info: Any) -> tuple[int, str]:
    """How many snapshots the VM has and the name of the one its current state follows."""
    if info is None or not info.rootSnapshotList:
        return 0, ""
    current_ref = getattr(info.currentSnapshot, "_moId", None)
    count, current, stack = 0, "", list(info.rootSnapshotList)
    while stack:
        tree = stack.pop()
        count += 1
        if current_ref is not None and getattr(tree.snapshot, "_moId", None) == current_ref:
            current = tree.name
        stack.extend(tree.childSnapshotList or [])
    return count, current


def _tools_status(status: Any, running_status: Any) -> str:
    if status == "toolsNotInstalled":
        return "not-installed"
    return "running" if running_status in _TOOLS_RUNNING else "not-running"


def _nics(devices: Iterable[Any], structure: Structure) -> list[NicRecord]:
    nics = []
    for device in devices:
        if not isinstance(device, vim.vm.device.VirtualEthernetCard):
            continue
        connectable = device.connectable
        nics.append(
            NicRecord(
                label=(device.deviceInfo.label if device.deviceInfo else "") or f"nic {device.key}",
                network=_network(device, structure),
                mac=device.macAddress or "",
                adapter=type(device).__name__.rsplit(".", 1)[-1].removeprefix("Virtual").lower(),
                connected=bool(connectable and connectable.connected),
                start_connected=bool(connectable is None or connectable.startConnected),
            )
        )
    return nics


def _network(device: Any, structure: Structure) -> str:
    """The port group or network a NIC is on: a standard network's name, a distributed port
    group's name (by its key), else what vCenter summarises the backing as."""
    backing = device.backing
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo) and backing.deviceName:
        return backing.deviceName
    port = getattr(backing, "port", None)
    if port is not None and port.portgroupKey in structure.portgroups:
        return structure.portgroups[port.portgroupKey]
    return (device.deviceInfo.summary if device.deviceInfo else "") or ""
