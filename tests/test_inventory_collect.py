"""Reading the inventory from the vSphere test server: every field of a VM, paths that find the
VM again, and one retrieval for the whole list whatever its size."""

from __future__ import annotations

from collections import Counter

import pytest
from pyVmomi import vim, vmodl

from exports.pipeline.connect import VCenterTarget
from exports.pipeline.inventory import FindVM, VMFacts
from exports.pipeline.options import ExportOptions
from exports.pipeline.preflight import Preflight
from exports.pipeline.run import STEPS, export_vm
from exports.pipeline.step import ExportRun, Step
from inventory import collect
from inventory.collect import collect_vms, index_vms, read_vm
from inventory.paths import escape_name, join_path, normalize_path, unescape_name
from inventory.soap import NotPlain, retrieve_plain
from tests.conftest import govc_environment, start_simulator
from tests.vsphere_sim.harness import DiskSpec, NicSpec

pytestmark = pytest.mark.vsphere

FOLDER = "/dc/vm/inv"
SLASHED = "backup/daily"
LONG_NAME = "仮想マシン名" * 13 + "仮想"  # 80 characters
MAC = "00:50:56:aa:bb:cc"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A simulator of this module's own: the VMs made here change no other test's inventory."""
    server = start_simulator(tmp_path_factory.mktemp("inventory"))
    server.add_network("DMZ")
    server.add_datastore("nfs01")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shaped(sim) -> dict[str, str]:
    """The VMs: {what: inventory path}."""
    disks = [
        DiskSpec(None, "pvscsi", thin=True, size_mib=64),
        DiskSpec(None, "sata", thin=False, size_mib=32, datastore="nfs01"),
        DiskSpec(None, "pvscsi", mode="independent_persistent", size_mib=16),
        DiskSpec(None, "pvscsi", rdm="virtual", size_mib=8),
    ]
    return {
        "full": sim.create_vm(
            FOLDER,
            "full",
            disks,
            firmware="efi",
            secure_boot=True,
            cdrom_iso=f"[{sim.datastore}] iso/installer.iso",
            snapshots=2,
            nics=[NicSpec(network="DMZ", mac=MAC, adapter="e1000e")],
            guest_id="debian11_64Guest",
            cpus=4,
            cores_per_socket=2,
            memory_mb=2048,
            cbt=True,
            power_on=True,
            tools="running",
            detected_guest_id="debian12_64Guest",
        ),
        "template": sim.create_vm(FOLDER, "golden", [DiskSpec(None, size_mib=8)], template=True),
        "encrypted": sim.create_vm(FOLDER, "vault", [DiskSpec(None, size_mib=8)], encrypted=True),
        "slashed": sim.create_vm(FOLDER, SLASHED, [DiskSpec(None, size_mib=8)]),
        "long": sim.create_vm(f"{FOLDER}/nested/deeper", LONG_NAME, [DiskSpec(None, size_mib=8)]),
        "percent": sim.create_vm(FOLDER, "100% & more", [DiskSpec(None, size_mib=8)]),
    }


def by_path(records, path: str):
    return next(r for r in records if r.path == path)


def test_a_vm_is_read_with_every_field_the_inventory_shows(sim, shaped):
    record = by_path(collect_vms(sim.service_instance()), shaped["full"])

    assert (record.name, record.path, record.datacenter, record.folder) == (
        "full",
        "/dc/vm/inv/full",
        "dc",
        FOLDER,
    )
    assert record.moref == sim.find_vm(shaped["full"])._moId
    assert (record.power_state, record.template, record.encrypted, record.cbt_enabled) == (
        "on",
        False,
        False,
        True,
    )
    assert (record.guest_id, record.tools_status) == ("debian11_64Guest", "running")
    assert "Debian" in record.guest_full_name and "12" in record.guest_detected
    assert (record.cpus, record.cores_per_socket, record.memory_mb) == (4, 2, 2048)
    assert (record.firmware, record.secure_boot) == ("efi", True)
    assert (record.snapshot_count, record.current_snapshot) == (2, "snap2")
    assert record.bios_uuid and record.instance_uuid
    assert [(d.capacity_bytes >> 20, d.provisioning, d.bus, d.controller) for d in record.disks] == [
        (64, "thin", "scsi", "pvscsi"),
        (32, "thick-eager", "sata", "ahci"),
        (16, "thin", "scsi", "pvscsi"),
        (8, "unknown", "scsi", "pvscsi"),  # a raw device mapping is neither
    ]
    assert [d.datastore for d in record.disks] == [sim.datastore, "nfs01", sim.datastore, sim.datastore]
    assert [(d.mode, d.rdm, d.left_out_by_export) for d in record.disks] == [
        ("persistent", None, False),
        ("persistent", None, False),
        ("independent_persistent", None, True),
        ("persistent", "virtual", True),
    ]
    assert all(d.datastore_accessible for d in record.disks)
    assert [(n.network, n.mac, n.adapter, n.connected) for n in record.nics] == [("DMZ", MAC, "e1000e", True)]
    cdrom = next(d for d in record.drives if d.image)
    assert (cdrom.kind, cdrom.image, cdrom.connected) == (
        "cdrom",
        f"[{sim.datastore}] iso/installer.iso",
        True,
    )


def test_the_export_estimate_counts_the_disks_the_export_carries(sim, shaped):
    record = by_path(collect_vms(sim.service_instance()), shaped["full"])

    # The independent disk and the RDM are left out; each other disk counts what the datastore
    # holds for it when vCenter says, else its capacity.
    carried = [d for d in record.disks if not d.left_out_by_export]
    expected = sum(
        d.capacity_bytes if d.allocated_bytes is None else min(d.allocated_bytes, d.capacity_bytes)
        for d in carried
    )
    assert record.estimated_export_bytes == expected
    assert 0 < record.estimated_export_bytes <= (64 + 32) << 20


def test_templates_encrypted_vms_and_inaccessible_datastores_are_told(sim, shaped):
    records = collect_vms(sim.service_instance())
    assert by_path(records, shaped["template"]).template is True
    assert by_path(records, shaped["encrypted"]).encrypted is True

    sim.set_datastore_accessible("nfs01", False)
    try:
        disks = by_path(collect_vms(sim.service_instance()), shaped["full"]).disks
    finally:
        sim.set_datastore_accessible("nfs01", True)
    assert [d.datastore_accessible for d in disks] == [True, False, True, True]


@pytest.mark.parametrize("what", ["slashed", "long", "percent"])
def test_every_path_finds_its_vm_again(sim, shaped, what):
    si = sim.service_instance()
    record = by_path(collect_vms(si), shaped[what])

    found = si.RetrieveContent().searchIndex.FindByInventoryPath(record.path.lstrip("/"))
    assert found is not None and found._moId == record.moref
    assert record.path.count("/") == shaped[what].count("/")


def test_a_slash_in_a_name_is_escaped_as_vcenter_escapes_it(sim, shaped):
    record = by_path(collect_vms(sim.service_instance()), shaped["slashed"])
    assert record.path == f"{FOLDER}/backup%2fdaily"
    assert unescape_name(record.name) == SLASHED


def test_read_vm_gives_the_record_the_list_gives(sim, shaped):
    si = sim.service_instance()
    records = collect_vms(si)
    for path in shaped.values():
        assert read_vm(si, sim.find_vm(path, si)) == by_path(records, path)


def test_the_list_entries_agree_with_the_records(sim, shaped):
    si = sim.service_instance()
    entries, _ = index_vms(si)
    records = collect_vms(si)
    assert [(e.moref, e.name, e.path, e.folder, e.power_state) for e in entries] == [
        (r.moref, r.name, r.path, r.folder, r.power_state) for r in records
    ]
    assert [(e.guest_id, e.guest_full_name, e.guest_detected) for e in entries] == [
        (r.guest_id, r.guest_full_name, r.guest_detected) for r in records
    ]


def soap_calls(monkeypatch, si) -> Counter:
    """Every SOAP call the session makes from now on, by method name (pyvmomi's and the list's
    own decoder alike serialise each request through the stub)."""
    calls: Counter = Counter()
    serialize = si._stub.SerializeRequest

    def counting(mo, info, args):
        calls[info.name] += 1
        return serialize(mo, info, args)

    monkeypatch.setattr(si._stub, "SerializeRequest", counting)
    return calls


def test_the_whole_list_is_one_retrieval_however_many_vms(sim, shaped, monkeypatch):
    si = sim.service_instance()
    calls = soap_calls(monkeypatch, si)
    few = len(collect_vms(si))
    first = Counter(calls)
    for n in range(3):
        sim.create_vm(f"{FOLDER}/more", f"more{n}", [DiskSpec(None, size_mib=8)])
    calls.clear()
    assert len(collect_vms(si)) == few + 3
    assert calls == first
    assert calls["RetrievePropertiesEx"] == 1 and sum(calls.values()) <= 6


def test_a_list_vcenter_pages_is_read_to_its_last_page(sim, shaped, monkeypatch):
    si = sim.service_instance()
    whole = collect_vms(si)
    entries, _ = index_vms(si)
    monkeypatch.setattr(collect, "PAGE_OBJECTS", 3)
    calls = soap_calls(monkeypatch, si)

    assert collect_vms(si) == whole
    assert calls["RetrievePropertiesEx"] == 1 and calls["ContinueRetrievePropertiesEx"] >= len(whole) // 3
    assert index_vms(si)[0] == entries


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("web01", "web01"),
        ("a/b", "a%2fb"),
        ("a\\b", "a%5cb"),
        ("100%", "100%25"),
        ("backup%2fdaily", "backup%2fdaily"),
        ("仮想/マシン", "仮想%2fマシン"),
    ],
)
def test_names_are_escaped_once_and_read_back(name, escaped):
    assert escape_name(name) == escaped
    assert escape_name(escaped) == escaped
    assert unescape_name(escaped) == unescape_name(name)


def test_paths_are_joined_and_normalised_like_vcenter_spells_them():
    assert join_path(["dc", "vm", "a/b"]) == "/dc/vm/a%2fb"
    assert normalize_path("dc//vm/prod/") == "/dc/vm/prod"
    assert normalize_path("/dc/vm/100%") == "/dc/vm/100%25"


def test_a_vm_left_without_its_parent_folder_has_no_path_beyond_its_name():
    # A VM vCenter shows no parent of (being moved): its path is its name alone, not an error.
    structure = collect.Structure(root="group-d1")
    record = collect.vm_record("vm-1", {"name": "lost", "config.hardware.device": []}, structure)
    assert (record.path, record.folder, record.datacenter) == ("/lost", "/", "")
    assert record.disks == () and record.estimated_export_bytes == 0


def test_a_vm_in_a_datacenter_folder_gets_the_whole_path():
    structure = collect.Structure(root="group-d1")
    for moref, name, parent in [
        ("group-d2", "EMEA", "group-d1"),
        ("datacenter-3", "dc", "group-d2"),
        ("group-v4", "vm", "datacenter-3"),
    ]:
        structure.names[moref], structure.parents[moref] = name, parent
    structure.datacenters.add("datacenter-3")
    parent = vim.Folder("group-v4")
    record = collect.vm_record("vm-9", {"name": "a/b", "parent": parent}, structure)
    assert (record.path, record.folder, record.datacenter) == ("/EMEA/dc/vm/a%2fb", "/EMEA/dc/vm", "dc")


def listing_spec(si, paths):
    pc = vmodl.query.PropertyCollector
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    through = pc.TraversalSpec(name="view", type=vim.view.ContainerView, path="view")
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[through])],
        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=list(paths))],
    )
    return content.propertyCollector, spec


def test_the_lists_decoder_reads_what_pyvmomi_reads(sim, shaped):
    si = sim.service_instance()
    pc, spec = listing_spec(si, collect.LISTING_PROPERTIES)

    def plain(objects):
        return sorted(
            (obj._moId, {k: getattr(v, "_moId", v) for k, v in props.items()}) for obj, props in objects
        )

    fast = retrieve_plain(pc, spec, vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=4))
    assert plain(fast) == plain(collect.retrieve(pc, spec))
    assert all(
        isinstance(obj, vim.VirtualMachine) and isinstance(props["parent"], vim.Folder) for obj, props in fast
    )


def test_the_lists_decoder_leaves_structured_values_to_pyvmomi(sim):
    si = sim.service_instance()
    pc, spec = listing_spec(si, ["config.hardware.device"])
    with pytest.raises(NotPlain):
        retrieve_plain(pc, spec, vmodl.query.PropertyCollector.RetrieveOptions())


def test_the_lists_decoder_raises_vcenters_fault(sim):
    si = sim.service_instance()
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=vim.VirtualMachine("vm-404404", si._stub))],
        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])],
    )
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        retrieve_plain(si.RetrieveContent().propertyCollector, spec, pc.RetrieveOptions())


class Probe(Step):
    """Keeps what FindVM handed on."""

    needs_vcenter = True

    def run(self, run: ExportRun) -> None:
        self.record, self.facts = run.record, run.facts


def test_the_export_reads_the_vm_as_the_inventory_does(sim, shaped, tmp_path):
    probe = Probe()
    options = ExportOptions(vm_path=shaped["full"], output_dir=tmp_path / "out", dry_run=True, power_off=True)
    find, *rest = STEPS
    assert isinstance(find, FindVM)
    # Without Preflight: the shaped VM's independent disk and RDM are blockers, and the run ends there.
    rest = [step for step in rest if not isinstance(step, Preflight)]
    export_vm(options, VCenterTarget.from_env(govc_environment(sim)), steps=(find, probe, *rest))

    si = sim.service_instance()
    assert probe.record == read_vm(si, sim.find_vm(shaped["full"], si))
    assert probe.facts == VMFacts.from_record(probe.record)
    facts = probe.facts
    assert (facts.name, facts.cpu, facts.memory_mb, facts.firmware, facts.secure_boot) == (
        "full",
        4,
        2048,
        "uefi",
        True,
    )
    assert facts.nics == [{"mac": MAC, "network": "DMZ", "adapter": "e1000e"}]
    assert facts.snapshots == {"count": 2, "current": "snap2"}
    assert any("installer.iso" in w for w in facts.warnings) and any("snap2" in w for w in facts.warnings)
