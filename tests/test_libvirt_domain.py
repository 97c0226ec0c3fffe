"""The libvirt domain written after conversion (``-libvirt``), checked by libvirt itself.

Every domain here passes ``virt-xml-validate`` (libvirt's schema) and ``virsh -c
test:///default define`` (libvirt's test driver: no daemon, no KVM). End to end, real exports
from the vSphere test server: a BIOS VM with two NICs on two controllers, and an EFI VM with
secure boot, two disks and an 80-character Japanese name; the domain's disks are the
converted files in the VM's boot order, its MACs the VM's, its firmware the VM's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import DomainError, PreflightBlocked
from exports.pipeline.options import ExportOptions, InvalidOptions
from exports.pipeline.run import export_vm
from inventory.records import NicRecord, VMRecord
from libvirt_domain.names import domain_name
from libvirt_domain.networks import NetworkTarget, parse_network_map
from libvirt_domain.osinfo import guest_os
from libvirt_domain.plan import DomainDisk, plan_domain
from libvirt_domain.xml import domain_xml
from tests.conftest import govc_environment
from tests.factories import vm_record
from tests.vsphere_sim.harness import DiskSpec, NicSpec, make_stream_vmdk

FOLDER = "/dc/vm/libvirt"
# 80 characters; not test_vm_shapes' long name: the session's simulator keeps each VM's files in
# a folder named after the VM, and a second VM of that name could not be created beside it.
LONG_NAME = "仮想計算機名" * 13 + "仮想"
DMZ = "DMZ (libvirt tests)"


def record(**overrides) -> VMRecord:
    """A Debian 11 VM with 4 vCPUs (2 sockets of 2 cores), a BIOS UUID and one NIC."""
    return vm_record(
        **{
            "guest_id": "debian11_64Guest",
            "cpus": 4,
            "cores_per_socket": 2,
            "bios_uuid": "4225b2c8-1c1b-4b6b-9e1c-2d6d0f4e0a11",
            "nics": (NicRecord("Network adapter 1", "VM Network", "00:50:56:aa:bb:cc", "vmxnet3"),),
        }
        | overrides
    )


def libvirt_accepts(path: Path) -> None:
    """virt-xml-validate and the test driver's define both take the file (or the test fails)."""
    subprocess.run(["virt-xml-validate", str(path), "domain"], check=True, capture_output=True)
    defined = subprocess.run(
        ["virsh", "-c", "test:///default", "define", str(path)], capture_output=True, text=True
    )
    assert defined.returncode == 0, defined.stderr


def write(tmp_path: Path, plan) -> Path:
    path = tmp_path / f"{plan.name}.xml"
    path.write_text(domain_xml(plan))
    return path


@pytest.mark.parametrize(
    "name",
    ["web server 01 (prod)", LONG_NAME, "Сервер базы данных", "données & <backup>", "a" * 80, "x\ny", "-rf"],
)
def test_any_vm_name_yields_a_domain_libvirt_takes(tmp_path, name):
    plan = plan_domain(record(name=name), [DomainDisk(str(tmp_path / "disk 1.qcow2"), "qcow2", 0)])
    path = write(tmp_path, plan)
    libvirt_accepts(path)
    root = ElementTree.parse(path).getroot()
    assert root.findtext("name") == plan.name and len(plan.name) <= 63
    assert plan.name[0].isalnum() and all(c.isascii() and (c.isalnum() or c in "_.+-") for c in plan.name)
    assert root.findtext("title") == name.replace("\n", " ")


def test_names_of_other_scripts_keep_apart_by_their_uuid():
    first = domain_name(LONG_NAME, "4225b2c8-0000-0000-0000-000000000000")
    second = domain_name(LONG_NAME + "2", "4225b2c9-0000-0000-0000-000000000000")
    assert first == "vm-4225b2c8" and second == "2-4225b2c9"
    assert domain_name("Über Server", "") == "Uber-Server"


@pytest.mark.parametrize(
    ("guest_id", "bus", "model"),
    [
        ("debian11_64Guest", "virtio", "virtio"),
        ("rhel8_64Guest", "virtio", "virtio"),
        ("windows9_64Guest", "sata", "e1000e"),  # no virtio driver in the box
        ("windows2019srvNext_64Guest", "sata", "e1000e"),
        ("otherGuest64", "sata", "e1000e"),  # unknown to osinfo-db
    ],
)
def test_the_bus_and_nic_model_follow_what_osinfo_db_says_of_the_guest(tmp_path, guest_id, bus, model):
    plan = plan_domain(record(guest_id=guest_id), [DomainDisk(str(tmp_path / "d.qcow2"), "qcow2", 0)])
    assert (plan.disk_bus, plan.nic_model) == (bus, model)
    assert plan.disk_bus_reason.startswith(bus) and "osinfo-db" in plan.disk_bus_reason
    libvirt_accepts(write(tmp_path, plan))


def test_osinfo_entries_inherit_devices_along_derives_from_and_clones():
    assert guest_os("debian10_64Guest").virtio_block  # debian10 lists none itself: from debian9
    assert guest_os("centos7_64Guest").virtio_net  # CentOS clones RHEL
    assert guest_os("centos64Guest").osinfo_id == "centos7.0"  # not "CentOS 64"
    assert guest_os("otherGuest64") is None


@pytest.mark.parametrize("bus", ["virtio", "sata", "scsi"])
def test_an_asked_bus_overrides_the_guest_os_and_numbers_the_disks_in_boot_order(tmp_path, bus):
    disks = [DomainDisk(str(tmp_path / f"d{n}.raw"), "raw", order) for n, order in ((0, 2), (1, 0), (2, 1))]
    plan = plan_domain(record(guest_id="windows9_64Guest"), disks, disk_bus=bus)
    path = write(tmp_path, plan)
    libvirt_accepts(path)
    attached = ElementTree.parse(path).getroot().findall("devices/disk")
    assert [d.find("source").get("file") for d in attached] == [
        str(tmp_path / f"d{n}.raw") for n in (1, 2, 0)
    ]
    assert [d.find("boot").get("order") for d in attached] == ["1", "2", "3"]
    assert {d.find("target").get("bus") for d in attached} == {bus}
    assert plan.disk_bus_reason == f"{bus}: as asked (disk bus {bus})"
    controllers = ElementTree.parse(path).getroot().findall("devices/controller[@type='scsi']")
    assert len(controllers) == (1 if bus == "scsi" else 0)


def test_nics_keep_their_macs_and_unmapped_networks_join_default_with_a_warning(tmp_path):
    nics = (
        NicRecord("Network adapter 1", "VM Network", "00:50:56:AA:BB:01", "vmxnet3"),
        NicRecord(
            "Network adapter 2", "DMZ, east", "00:50:56:aa:bb:02", "e1000e", False, start_connected=False
        ),
        NicRecord("Network adapter 3", "Backup", "00:50:56:aa:bb:03", "vmxnet3"),
    )
    mapping = parse_network_map(r"VM Network=prod,DMZ\, east=bridge:br-dmz")
    plan = plan_domain(record(nics=nics), [], network_map=mapping)
    path = write(tmp_path, plan)
    libvirt_accepts(path)
    interfaces = ElementTree.parse(path).getroot().findall("devices/interface")
    assert [i.find("mac").get("address") for i in interfaces] == [f"00:50:56:aa:bb:0{n}" for n in (1, 2, 3)]
    assert [(i.get("type"), i.find("source").attrib) for i in interfaces] == [
        ("network", {"network": "prod"}),
        ("bridge", {"bridge": "br-dmz"}),
        ("network", {"network": "default"}),
    ]
    assert interfaces[1].find("link").get("state") == "down"
    assert [nic.mapped for nic in plan.nics] == [True, True, False]
    assert len(plan.warnings) == 1 and "'Backup' is not in the network map" in plan.warnings[0]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("VM Network", "write <vSphere network>=<libvirt network>"),
        ("a=b,,c=d", "an empty pair"),
        ("=default", "the vSphere network's name is empty"),
        ("a=x,a=y", "'a' is mapped twice"),
        ("a=bridge:this-is-far-too-long", "is not a bridge name"),
        ("a=../etc", "is not a libvirt network name"),
        ("a=", "is not a libvirt network name"),
    ],
)
def test_a_bad_network_map_is_one_line_naming_the_pair(text, error):
    with pytest.raises(InvalidOptions, match=error) as refused:
        ExportOptions(vm_path="/dc/vm/x", convert=True, libvirt=True, network_map=text).validate()
    assert "\n" not in str(refused.value) and refused.value.field == "network_map"
    assert parse_network_map("a=b") == {"a": NetworkTarget("network", "b")}


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"libvirt": True}, "-libvirt needs -convert"),
        ({"convert": True, "disk_bus": "scsi"}, "-disk-bus needs -libvirt"),
        ({"convert": True, "network_map": "a=b"}, "-network-map needs -libvirt"),
        (
            {"convert": True, "libvirt": True, "define_uri": "qemu+ext:///system?command=/bin/sh"},
            "not allowed",
        ),
        ({"convert": True, "libvirt": True, "define_uri": "test:///default"}, "not allowed"),
    ],
)
def test_options_that_need_another_or_a_uri_not_allowed_are_refused(options, error):
    with pytest.raises(InvalidOptions, match=error):
        ExportOptions(vm_path="/dc/vm/x", **options).validate()


def test_a_vm_without_a_bios_uuid_or_with_odd_cpus_still_gets_a_valid_domain(tmp_path):
    plan = plan_domain(record(bios_uuid="", cpus=3, cores_per_socket=2, nics=()), [])
    assert plan.uuid == "" and (plan.sockets, plan.cores, plan.vcpus) == (1, 3, 3)
    assert len(plan.warnings) == 2
    libvirt_accepts(write(tmp_path, plan))


def test_efi_with_secure_boot_asks_libvirt_for_a_secure_boot_ovmf(tmp_path):
    plan = plan_domain(record(firmware="efi", secure_boot=True, guest_id="windows2019srv_64Guest"), [])
    root = ElementTree.fromstring(domain_xml(plan))
    assert root.find("os").get("firmware") == "efi"
    assert {f.get("name"): f.get("enabled") for f in root.findall("os/firmware/feature")} == {
        "secure-boot": "yes",
        "enrolled-keys": "yes",
    }
    assert root.find("features/smm").get("state") == "on" and root.find("clock").get("offset") == "localtime"
    libvirt_accepts(write(tmp_path, plan))


# End to end, on the vSphere test server.


@pytest.fixture(scope="module")
def vms(vsphere, tmp_path_factory) -> dict[str, str]:
    seeds = tmp_path_factory.mktemp("libvirt-seeds")
    vsphere.add_network(DMZ)
    bios = [
        DiskSpec(make_stream_vmdk(seeds / "b-1.vmdk", 1), "sata"),
        DiskSpec(make_stream_vmdk(seeds / "b-2.vmdk", 1), "pvscsi"),
    ]
    efi = [
        DiskSpec(make_stream_vmdk(seeds / "e-1.vmdk", 2), "pvscsi"),
        DiskSpec(make_stream_vmdk(seeds / "e-2.vmdk", 1), "pvscsi"),
    ]
    return {
        "bios": vsphere.create_vm(
            FOLDER,
            "bios web01",
            bios,
            guest_id="debian11_64Guest",
            cpus=4,
            cores_per_socket=2,
            memory_mb=1536,
            nics=[
                NicSpec(mac="00:50:56:01:02:03"),
                NicSpec(network=DMZ, mac="00:50:56:01:02:04", adapter="e1000e"),
            ],
        ),
        "efi": vsphere.create_vm(
            FOLDER,
            LONG_NAME,
            efi,
            firmware="efi",
            secure_boot=True,
            nvram=b"\0" * 8192,
            guest_id="windows2019srv_64Guest",
            cpus=2,
            cores_per_socket=2,
            memory_mb=4096,
            nics=[NicSpec(mac="00:50:56:0a:0b:0c")],
        ),
    }


def export(sim, vm_path: str, out: Path, **options):
    options = ExportOptions(vm_path=vm_path, output_dir=out, convert=True, libvirt=True, **options)
    return export_vm(options, VCenterTarget.from_env(govc_environment(sim)))


def vm_facts(sim, vm_path: str):
    vm = sim.find_vm(vm_path)
    from pyVmomi import vim

    macs = [
        d.macAddress for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]
    return vm.config.uuid, macs


@pytest.mark.vsphere
@pytest.mark.parametrize("shape", ["bios", "efi"])
def test_the_exported_vm_gets_a_domain_of_its_converted_disks_macs_and_firmware(
    vsphere, vms, tmp_path, shape
):
    out = tmp_path / "out"
    result = export(vsphere, vms[shape], out, network_map=f"{DMZ}=bridge:br-dmz")
    domain_path = Path(result.libvirt_domain)
    assert domain_path.parent == out and domain_path.suffix == ".xml" and domain_path.name in result.artifacts
    libvirt_accepts(domain_path)
    root = ElementTree.parse(domain_path).getroot()
    bios_uuid, macs = vm_facts(vsphere, vms[shape])
    assert root.findtext("uuid") == bios_uuid
    assert [i.find("mac").get("address") for i in root.findall("devices/interface")] == macs
    # The converted files, in the manifest's boot order.
    manifest = json.loads((out / "manifest.json").read_text())
    by_id = {o.disk_id: o.output for o in result.conversion.outputs}
    in_boot_order = [by_id[d["id"]] for d in sorted(manifest["disks"], key=lambda d: d["boot_order_hint"])]
    assert [d.find("source").get("file") for d in root.findall("devices/disk")] == in_boot_order
    assert all(Path(path).is_file() for path in in_boot_order)
    assert manifest["output"]["libvirt_domain"] == str(domain_path)
    report = json.loads((out / "conversion-report.json").read_text())["libvirt_domain"]
    assert report["path"] == str(domain_path) and report["validated_by"] == "virt-xml-validate"
    if shape == "bios":
        assert root.find("os").get("firmware") is None and report["disk_bus"] == "virtio"
        assert root.findtext("title") == "bios web01" and root.findtext("name") == "bios-web01"
        assert [i.get("type") for i in root.findall("devices/interface")] == ["network", "bridge"]
        assert root.find("cpu/topology").attrib.items() >= {"sockets": "2", "cores": "2"}.items()
        assert root.find("memory").text == "1536"
    else:
        assert root.find("os").get("firmware") == "efi" and report["secure_boot"] is True
        assert report["disk_bus"] == "sata" and "virtio-win" in report["disk_bus_reason"]
        assert root.findtext("title") == LONG_NAME


@pytest.mark.vsphere
def test_define_refuses_a_taken_name_before_any_download(vsphere, tmp_path, monkeypatch):
    # libvirt's test driver holds a domain named "test" from the start.
    monkeypatch.setenv("HYPERSDK_LIBVIRT_DEFINE_URIS", "test:///default")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    vm_path = vsphere.create_vm(FOLDER, "test", [DiskSpec(make_stream_vmdk(seeds / "t.vmdk", 1))])
    out = tmp_path / "out"
    with pytest.raises(
        PreflightBlocked, match="a domain named 'test' is already defined at test:///default"
    ) as blocked:
        export(vsphere, vm_path, out, define_uri="test:///default")
    assert [f.code for f in blocked.value.findings if f.level == "blocker"] == ["domain-exists"]
    assert not out.exists() or not any(p.suffix in (".vmdk", ".xml") for p in out.rglob("*"))


@pytest.mark.vsphere
def test_define_defines_the_verified_export(vsphere, vms, tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERSDK_LIBVIRT_DEFINE_URIS", "test:///default")
    result = export(vsphere, vms["bios"], tmp_path / "out", verify=True, define_uri="test:///default")
    assert result.conversion.libvirt_domain["defined"] == "test:///default"
    report = json.loads((tmp_path / "out" / "conversion-report.json").read_text())
    assert report["libvirt_domain"]["defined"] == "test:///default"


def test_a_missing_validator_or_virsh_is_refused_before_connecting(tmp_path, monkeypatch):
    validator = shutil.which("virt-xml-validate")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HYPERSDK_LIBVIRT_DEFINE_URIS", "test:///default")
    # Nothing listens here: getting past the steps' checks would fail differently.
    target = VCenterTarget(host="127.0.0.1", port=9, username="u", password="p", insecure=True)
    for asked, missing in (
        (("libvirt",), "virt-xml-validate not found"),
        (("libvirt", "define"), "virsh not found"),
    ):
        options = {"convert": True, "libvirt": True, "hyper2kvm_path": None}
        if "define" in asked:
            (empty / "virt-xml-validate").symlink_to(validator)
            options["define_uri"] = "test:///default"
        with pytest.raises(DomainError, match=missing):
            export_vm(ExportOptions(vm_path="/dc/vm/x", output_dir=tmp_path / "out", **options), target)


@pytest.mark.vsphere
def test_preflight_shows_the_domain_and_each_unmapped_network(vsphere, vms):
    options = ExportOptions(vm_path=vms["bios"], convert=True, libvirt=True, preflight=True)
    result = export_vm(options, VCenterTarget.from_env(govc_environment(vsphere)))
    found = {(f["level"], f["code"]): f for f in result.findings}
    unmapped = [f for f in result.findings if f["code"] == "network-unmapped"]
    assert ["'VM Network'" in unmapped[0]["reason"], f"'{DMZ}'" in unmapped[1]["reason"]] == [True, True]
    assert all(
        f["level"] == "warning" and f["action"].startswith("map it with -network-map") for f in unmapped
    )
    assert "disk bus virtio: osinfo-db says Debian 11" in found[("info", "libvirt-domain")]["reason"]


@pytest.mark.vsphere
def test_hyper2kvm_conversions_get_the_domain_too(vsphere, vms, tmp_path, monkeypatch):
    from hyper2kvm.manifest.loader import ManifestLoader

    hyper2kvm = shutil.which("hyper2kvm") or str(Path(sys.executable).parent / "hyper2kvm")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    result = export(vsphere, vms["efi"], out, hyper2kvm_path=hyper2kvm)
    assert result.conversion.converter == "hyper2kvm"
    root = ElementTree.parse(result.libvirt_domain).getroot()
    assert [d.find("source").get("file") for d in root.findall("devices/disk")] == [
        o.output for o in result.conversion.outputs
    ]
    ManifestLoader().load(out / "manifest.json")  # hyper2kvm still reads the manifest


@pytest.mark.parametrize("bus", ["virtio", "sata", "scsi"])
def test_a_vm_with_a_cdrom_gets_an_empty_sata_drive_that_takes_no_disk_name(tmp_path, bus):
    from inventory.records import DriveRecord

    drives = (DriveRecord("CD/DVD drive 1", "cdrom", "[ds] iso/win.iso", True, True, "IsoBackingInfo"),)
    disks = [DomainDisk(str(tmp_path / f"d{n}.qcow2"), "qcow2", n) for n in range(2)]
    plan = plan_domain(record(drives=drives), disks, disk_bus=bus)
    path = write(tmp_path, plan)
    libvirt_accepts(path)
    root = ElementTree.parse(path).getroot()
    (cdrom,) = root.findall("devices/disk[@device='cdrom']")
    assert cdrom.find("source") is None and cdrom.find("readonly") is not None
    names = [d.find("target").get("dev") for d in root.findall("devices/disk")]
    assert len(set(names)) == 3 and cdrom.find("target").get("bus") == "sata"
    assert plan_domain(record(), disks).cdrom_target == ""


# What the first breaking pass found.


@pytest.mark.vsphere
def test_a_powered_off_vms_nics_keep_their_link_as_they_start_connected(vsphere, tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    nics = [NicSpec(mac="00:50:56:00:10:01"), NicSpec(mac="00:50:56:00:10:02", connected=False)]
    vm_path = vsphere.create_vm(FOLDER, "links", [DiskSpec(make_stream_vmdk(seeds / "l.vmdk", 1))], nics=nics)
    result = export(vsphere, vm_path, tmp_path / "out")
    interfaces = ElementTree.parse(result.libvirt_domain).getroot().findall("devices/interface")
    assert [i.find("link") is None for i in interfaces] == [True, False]
    assert [n["connected"] for n in result.conversion.libvirt_domain["nics"]] == [True, False]


@pytest.mark.vsphere
def test_what_stands_at_the_domains_name_is_warned_of_and_never_followed(vsphere, vms, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("keep\n")
    (out / "bios web01.xml").symlink_to(decoy)  # <output>/<vm name>.xml
    preflight = export_vm(
        ExportOptions(vm_path=vms["bios"], output_dir=out, convert=True, libvirt=True, preflight=True),
        VCenterTarget.from_env(govc_environment(vsphere)),
    )
    collision = [f for f in preflight.findings if f["code"] == "name-collision"]
    assert collision and "bios web01.xml" in collision[0]["reason"]
    result = export(vsphere, vms["bios"], out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["output"]["libvirt_domain"] == str(out / "bios web01.xml") == result.libvirt_domain
    assert decoy.read_text() == "keep\n" and not (out / "bios web01.xml").is_symlink()


@pytest.mark.vsphere
def test_an_output_path_with_a_newline_is_refused_before_the_download(vsphere, vms, tmp_path):
    out = tmp_path / "out\nlines"
    with pytest.raises(DomainError, match="control character"):
        export(vsphere, vms["bios"], out)
    assert not out.exists()
    # Without -libvirt the manifest may name such a directory: its schema takes any absolute path.
    export_vm(
        ExportOptions(vm_path=vms["bios"], output_dir=out, manifest=True),
        VCenterTarget.from_env(govc_environment(vsphere)),
    )


def test_virsh_is_read_in_english_whatever_the_locale(monkeypatch):
    from libvirt_domain.define import DomainExists, check_definable

    monkeypatch.setenv("HYPERSDK_LIBVIRT_DEFINE_URIS", "test:///default")
    monkeypatch.setenv("LANGUAGE", "fr")
    monkeypatch.setenv("LC_ALL", "fr_FR.UTF-8")
    check_definable("test:///default", "free-name", "")  # not "cannot reach libvirt"
    with pytest.raises(DomainExists):
        check_definable("test:///default", "test", "")


def test_guest_os_edge_cases_pick_the_safe_bus():
    assert plan_domain(record(guest_id="other24xLinux64Guest"), []).disk_bus == "sata"  # no virtio in 2.4
    freebsd = plan_domain(record(guest_id="freebsd14_64Guest"), [])
    assert freebsd.disk_bus == "virtio" and "nearest entry for freebsd14_64Guest" in freebsd.disk_bus_reason


def test_odd_topologies_and_titles_are_kept_as_well_as_libvirt_can(tmp_path):
    plan = plan_domain(record(cpus=768, cores_per_socket=7, name="web_01 "), [])
    assert (plan.sockets, plan.cores) == (1, 768) and plan.title == "web_01 "
    assert any("at most 288" in w for w in plan.warnings)
    libvirt_accepts(write(tmp_path, plan))


def test_spaces_around_the_network_maps_equals_sign_still_map():
    plan = plan_domain(record(), [], network_map=parse_network_map("VM Network = prod"))
    assert [(str(n.target), n.mapped) for n in plan.nics] == [("prod", True)]


# What the second breaking pass found.

# A libvirtd that refuses the define at the end (e.g. no OVMF firmware descriptor for an EFI
# domain): no libvirtd runs here, so a virsh that answers as one would stands in.
REFUSING_VIRSH = """#!/bin/sh
for argument in "$@"; do last=$argument; case $argument in domuuid|domname|define) action=$argument;; esac; done
case $action in
  define) echo "error: Failed to define domain from $last" >&2
          echo "error: operation failed: Unable to find any firmware to satisfy 'efi'" >&2; exit 1;;
  *) echo "error: failed to get domain '$last'" >&2; exit 1;;
esac
"""


@pytest.mark.vsphere
def test_a_define_refused_at_the_end_keeps_the_verified_export_and_says_so(
    vsphere, vms, tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "virsh").write_text(REFUSING_VIRSH)
    (bin_dir / "virsh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HYPERSDK_LIBVIRT_DEFINE_URIS", "qemu:///system")
    out = tmp_path / "out"
    result = export(vsphere, vms["efi"], out, verify=True, define_uri="qemu:///system")
    domain = result.conversion.libvirt_domain
    assert domain["defined"] is None and "Unable to find any firmware" in domain["define_error"]
    assert Path(result.libvirt_domain).is_file() and all(
        Path(o.output).is_file() for o in result.conversion.outputs
    )
    assert json.loads((out / "conversion-report.json").read_text())["libvirt_domain"]["define_error"]


def test_an_argument_that_is_not_utf8_is_one_line_before_anything_runs(tmp_path):
    for program, arguments in (
        ("hyperexport", [b"-vm", b"/dc/vm/x", b"-convert", b"-libvirt", b"-network-map", b"VM Network=\xff"]),
        ("hyperexport", [b"-vm", b"/dc/vm/x/\xff"]),
        ("hyperctl", [b"vms", b"info", b"/dc/vm/\xff"]),
    ):
        ran = subprocess.run(
            [str(Path(sys.executable).parent / program), *arguments],
            capture_output=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert ran.returncode == 2 and ran.stderr.count(b"\n") == 1, ran.stderr
        assert b"is not valid UTF-8" in ran.stderr and b"Traceback" not in ran.stderr


def test_the_advice_for_an_unmapped_network_pastes_back_as_that_network():
    from inventory.checks import HostFacts, check

    odd = NicRecord("Network adapter 1", "a=b,c\\d", "00:50:56:aa:bb:cc", "vmxnet3")
    options = ExportOptions(vm_path="/dc/vm/prod/web01", convert=True, libvirt=True)
    plan = plan_domain(record(nics=(odd,)), [])
    (finding,) = [
        f
        for f in check(record(nics=(odd,)), options, HostFacts("/x", domain_plan=plan))
        if f.code == "network-unmapped"
    ]
    pasted = finding.action.split("(", 1)[1].split(" or ", 1)[0]  # "<escaped name>=<libvirt network>"
    assert parse_network_map(pasted.replace("<libvirt network>", "prod")) == {
        "a=b,c\\d": NetworkTarget("network", "prod")
    }


def test_a_name_vcenter_keeps_escaped_is_the_domains_as_read():
    plan = plan_domain(record(name="backup%2fdaily"), [])
    assert (plan.name, plan.title) == ("backup-daily", "backup/daily")


def test_what_xml_cannot_hold_is_refused_before_connecting(tmp_path):
    with pytest.raises(InvalidOptions, match="not a libvirt network name"):
        ExportOptions(
            vm_path="/dc/vm/x", convert=True, libvirt=True, network_map="VM Network=n\uffff"
        ).validate()
    target = VCenterTarget(host="127.0.0.1", port=9, username="u", password="p", insecure=True)
    with pytest.raises(DomainError, match="XML cannot hold"):
        export_vm(
            ExportOptions(vm_path="/dc/vm/x", output_dir=tmp_path / "x\uffff", convert=True, libvirt=True),
            target,
        )
    assert plan_domain(record(name="odd\ufffe name"), []).title == "odd  name"


def test_a_refused_define_is_said_with_the_commands_that_name_its_uri():
    from cli import render

    result = {
        "libvirt_domain": "/exports/web01/web01.xml",
        "conversion": {
            "libvirt_domain": {
                "name": "web01",
                "defined": None,
                "define_uri": "qemu:///system",
                "define_error": "virsh define at qemu:///system failed: no firmware",
            }
        },
    }
    assert render.domain_lines({"result": result}) == [
        "libvirt domain: /exports/web01/web01.xml",
        "  warning: not defined: virsh define at qemu:///system failed: no firmware",
        "  next: virsh -c qemu:///system define /exports/web01/web01.xml",
        "  next: virsh -c qemu:///system start web01",
    ]
