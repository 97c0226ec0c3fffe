"""Real VM shapes, exported end to end against the vSphere test server.

Disks on SCSI (paravirtual), SATA, NVMe and IDE of different sizes, one thin disk of 9 GiB
holding little data; an EFI VM with secure boot and NVRAM in nested folders under an
80-character non-Latin name; a VM with an ISO CD-ROM, a floppy and snapshots; names with
spaces, ``&``, ``#``, ``%2f`` and a trailing dot. Every ``.ovf`` written is read back with
govmomi's ``ovf`` package (tests/vsphere_sim/ovfcheck) and compared with the VM's devices.
The VMs are made once per module in the session's simulator; the disks are small or sparse.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from pyVmomi import vim

from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import VerificationError
from exports.pipeline.options import ExportOptions
from exports.pipeline.progress import CancelToken, NullReporter
from exports.pipeline.run import export_vm
from exports.pipeline.verify import verify_export
from tests.conftest import govc_environment
from tests.vsphere_sim.harness import (
    DiskSpec,
    SimulatorUnavailable,
    build_ovf_checker,
    make_sparse_stream_vmdk,
    make_stream_vmdk,
)

pytestmark = pytest.mark.vsphere

FOLDER = "/dc/vm/shapes"
NESTED = "/dc/vm/shapes/nested/deeper"
LONG_NAME = "仮想マシン名" * 13 + "仮想"  # 80 characters of Japanese, 240 bytes of UTF-8
ODD_NAMES = ["web & db #2", "backup%2fdaily", "ends with a dot.", " leading space"]
NVRAM = bytes(range(256)) * 33  # 8448 bytes, about what an EFI VM's .nvram holds
BIG = 9 << 30  # a thin disk over 8 GiB


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def virtual_size(path: Path) -> int:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)["virtual-size"]


def identical(a: Path, b: Path) -> bool:
    return subprocess.run(["qemu-img", "compare", str(a), str(b)], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def ovfcheck():
    try:
        binary = build_ovf_checker()
    except SimulatorUnavailable as exc:
        pytest.fail(f"the OVF checker is required and could not be built: {exc}", pytrace=False)

    def read(path: Path) -> dict:
        proc = subprocess.run([str(binary), str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    return read


@pytest.fixture(scope="module")
def shapes(vsphere, tmp_path_factory) -> dict:
    """The VMs, made once: {shape: (inventory path, [seed VMDKs])}."""
    seeds = tmp_path_factory.mktemp("shape-seeds")
    sparse = {0: os.urandom(1 << 20), BIG - (1 << 20): os.urandom(64 << 10)}
    multi = [
        DiskSpec(make_stream_vmdk(seeds / "m-scsi.vmdk", 3), "pvscsi", thin=False),
        DiskSpec(make_sparse_stream_vmdk(seeds / "m-sata.vmdk", BIG, sparse), "sata"),
        DiskSpec(make_stream_vmdk(seeds / "m-nvme.vmdk", 2), "nvme"),
        DiskSpec(make_stream_vmdk(seeds / "m-ide.vmdk", 1), "ide"),
    ]
    efi = [
        DiskSpec(make_stream_vmdk(seeds / "e-1.vmdk", 2), "pvscsi"),
        DiskSpec(make_stream_vmdk(seeds / "e-2.vmdk", 1), "pvscsi"),  # same controller, unit 1
    ]
    small = make_stream_vmdk(seeds / "small.vmdk", 1)
    made = {
        "multi": (vsphere.create_vm(FOLDER, "multi", multi), multi),
        "efi": (
            vsphere.create_vm(NESTED, LONG_NAME, efi, firmware="efi", secure_boot=True, nvram=NVRAM),
            efi,
        ),
        # Long names in an OVA's tar headers are the packaging module's part; this one is short.
        "efi_ova": (
            vsphere.create_vm(NESTED, "efi01", efi, firmware="efi", secure_boot=True, nvram=NVRAM),
            efi,
        ),
        "drives": (
            vsphere.create_vm(
                FOLDER,
                "drives",
                [DiskSpec(small)],
                cdrom_iso=f"[{vsphere.datastore}] iso/installer.iso",
                floppy_image=f"[{vsphere.datastore}] floppy/drivers.flp",
                snapshots=2,
            ),
            [DiskSpec(small)],
        ),
    }
    for n, name in enumerate(ODD_NAMES):
        made[f"odd{n}"] = (vsphere.create_vm(FOLDER, name, [DiskSpec(small)]), [DiskSpec(small)])
    return made


def export(sim, vm_path: str, out: Path, **options):
    options = ExportOptions(vm_path=vm_path, output_dir=out, **options)
    return export_vm(options, VCenterTarget.from_env(govc_environment(sim)))


def vm_disks(sim, vm_path: str) -> list:
    vm = sim.find_vm(vm_path)
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def controller_of(sim, vm_path: str, disk) -> object:
    vm = sim.find_vm(vm_path)
    return next(d for d in vm.config.hardware.device if d.key == disk.controllerKey)


def assert_descriptor_matches_the_vm(sim, vm_path: str, ovf: dict, out: Path) -> None:
    """govmomi's reading of the .ovf: each disk's capacity, controller, unit and label are its device's."""
    disks = vm_disks(sim, vm_path)
    assert len(ovf["disks"]) == len(disks)
    subtypes = {
        vim.vm.device.ParaVirtualSCSIController: (6, "VirtualSCSI"),
        vim.vm.device.VirtualAHCIController: (20, "vmware.sata.ahci"),
        vim.vm.device.VirtualNVMEController: (20, "vmware.nvme.controller"),
        vim.vm.device.VirtualIDEController: (5, ""),
    }
    for described, disk in zip(ovf["disks"], disks, strict=True):
        controller = controller_of(sim, vm_path, disk)
        assert int(described["capacity_bytes"]) == disk.capacityInBytes
        assert int(described["capacity_bytes"]) == virtual_size(out / described["file_href"])
        assert described["address_on_parent"] == str(disk.unitNumber)
        assert described["element_name"] == disk.deviceInfo.label
        resource_type, subtype = subtypes[type(controller)]
        assert described["controller"] == {
            "resource_type": resource_type,
            "subtype": subtype,
            "address": str(controller.busNumber),
        }


def test_every_disk_gets_the_capacity_and_controller_of_its_own_device(vsphere, shapes, tmp_path, ovfcheck):
    vm_path, specs = shapes["multi"]
    out = tmp_path / "out"
    export(vsphere, vm_path, out, manifest=True)

    manifest = json.loads((out / "manifest.json").read_text())
    sizes = [virtual_size(spec.image) for spec in specs]
    assert len(set(sizes)) == len(sizes)  # all different, so a mix-up shows
    assert [d["capacity_bytes"] for d in manifest["disks"]] == sizes
    assert [virtual_size(Path(d["local_path"])) for d in manifest["disks"]] == sizes
    # Every disk sits at unit 0 of its own controller: only controller + bus + unit tell them apart.
    assert [d["controller"] for d in manifest["disks"]] == [
        {"bus": "scsi", "model": "pvscsi", "bus_number": 0, "unit_number": 0},
        {"bus": "sata", "model": "ahci", "bus_number": 0, "unit_number": 0},
        {"bus": "nvme", "model": "nvme", "bus_number": 0, "unit_number": 0},
        {"bus": "ide", "model": "ide", "bus_number": 0, "unit_number": 0},
    ]
    disks = vm_disks(vsphere, vm_path)
    assert [d["label"] for d in manifest["disks"]] == [d.deviceInfo.label for d in disks]
    assert [d["provisioning"] for d in manifest["disks"]] == ["thick-eager", "thin", "thin", "thin"]
    assert {d["datastore"] for d in manifest["disks"]} == {vsphere.datastore}
    assert [d["source_file"] for d in manifest["disks"]] == [d.backing.fileName for d in disks]
    assert [d["boot_order_hint"] for d in manifest["disks"]] == [0, 1, 2, 3]
    assert_descriptor_matches_the_vm(vsphere, vm_path, ovfcheck(out / "multi.ovf"), out)


@pytest.mark.parametrize("target", ["qcow2", "raw", "vdi"])
def test_multi_controller_vm_converts_identical_to_each_disks_seed(vsphere, shapes, tmp_path, target):
    vm_path, specs = shapes["multi"]
    out = tmp_path / "out"
    result = export(vsphere, vm_path, out, manifest_target=target, convert=True, verify=True)

    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["disks"]) == len(specs) == len(result.conversion.outputs)
    for disk, spec in zip(manifest["disks"], specs, strict=True):
        converted = out / "converted" / f"{disk['id']}.{target}"
        assert virtual_size(converted) == virtual_size(spec.image)
        assert identical(spec.image.with_suffix(".raw"), converted)
    big = out / "converted" / f"{manifest['disks'][1]['id']}.{target}"
    assert big.stat().st_blocks * 512 < 64 << 20  # 9 GiB of capacity, a few MiB on disk


def test_efi_vm_exports_its_nvram_as_a_file_beside_the_disks(vsphere, shapes, tmp_path, ovfcheck):
    vm_path, specs = shapes["efi"]
    out = tmp_path / "out"
    result = export(vsphere, vm_path, out, manifest=True)

    lease = vsphere.leases()[-1]
    assert lease["state"] == "done" and "nvram-0.nvram" in lease["files"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vm"]["firmware"] == "uefi" and manifest["vm"]["secureboot"] is True
    assert len(manifest["disks"]) == 2  # the NVRAM is a file of the export, not a disk
    nvram = Path(manifest["nvram"]["local_path"])
    assert nvram.read_bytes() == NVRAM
    assert manifest["nvram"]["checksum"] == f"sha256:{hashlib.sha256(NVRAM).hexdigest()}"
    assert [d["capacity_bytes"] for d in manifest["disks"]] == [virtual_size(s.image) for s in specs]
    assert [d["controller"]["unit_number"] for d in manifest["disks"]] == [0, 1]

    ovf_path = Path(result.package)
    mf = (out / ovf_path.with_suffix(".mf").name).read_text()
    assert f"SHA256({nvram.name})= {sha256(nvram)}\n" in mf
    described = ovfcheck(ovf_path)
    assert described["name"] == LONG_NAME
    nvram_file = next(f for f in described["files"] if f["href"] == nvram.name)
    assert nvram_file["size"] == len(NVRAM)
    assert described["extra_config"]["nvram"] == f"ovf:/file/{nvram_file['id']}"
    assert described["config"]["firmware"] == "efi"
    assert described["config"]["bootOptions.efiSecureBootEnabled"] == "true"
    assert_descriptor_matches_the_vm(vsphere, vm_path, described, out)

    checked = verify_export(manifest, None, timeout_seconds=60, reporter=NullReporter(), cancel=CancelToken())
    assert f"{nvram.name}: sha256 matches the manifest" in checked
    nvram.write_bytes(NVRAM[:-1] + b"x")
    with pytest.raises(VerificationError, match="checksum mismatch for .*nvram"):
        verify_export(manifest, None, timeout_seconds=60, reporter=NullReporter(), cancel=CancelToken())


def test_efi_vm_packs_its_nvram_into_the_ova(vsphere, shapes, tmp_path):
    vm_path, _ = shapes["efi_ova"]
    out = tmp_path / "out"
    result = export(vsphere, vm_path, out, format="ova", manifest=True)

    ova = Path(result.package)
    with tarfile.open(ova) as tar:
        names = tar.getnames()
        assert names[0].endswith(".ovf") and names[1].endswith(".mf")
        nvram = next(n for n in names if n.endswith(".nvram"))
        assert tar.extractfile(nvram).read() == NVRAM
    gnu = subprocess.run(["tar", "tf", str(ova)], capture_output=True, text=True, check=True).stdout
    assert gnu.splitlines() == names


def test_cdrom_and_floppy_are_left_out_and_named_in_the_warnings(vsphere, shapes, tmp_path, ovfcheck):
    vm_path, _ = shapes["drives"]
    out = tmp_path / "out"
    export(vsphere, vm_path, out, manifest=True)

    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["disks"]) == 1
    warnings = "\n".join(manifest["warnings"])
    assert "installer.iso" in warnings and "CD-ROM" in warnings
    assert "drivers.flp" in warnings and "floppy" in warnings
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".iso", ".flp", ".nvram")) == []
    drives = ovfcheck(out / "drives.ovf")["drives"]
    assert sorted(d["resource_type"] for d in drives) == [14, 15]


def test_what_the_export_leaves_out_is_logged_once_by_the_preflight(vsphere, shapes, tmp_path):
    class Recording(NullReporter):
        lines: list[str] = []

        def log(self, level: int, message: str) -> None:
            self.lines.append(message)

    vm_path, _ = shapes["drives"]
    reporter = Recording()
    options = ExportOptions(vm_path=vm_path, output_dir=tmp_path / "out", compress=True, format="ovf")
    export_vm(options, VCenterTarget.from_env(govc_environment(vsphere)), reporter)
    for what in ("installer.iso", "drivers.flp", "snapshot(s)", "-compress has no effect"):
        said = [line for line in reporter.lines if what in line]
        assert len(said) == 1, (what, said)
        assert said[0].startswith("preflight: warning: "), said


def test_a_vm_with_snapshots_exports_its_current_state_and_records_the_snapshots(vsphere, shapes, tmp_path):
    vm_path, specs = shapes["drives"]
    out = tmp_path / "out"
    export(vsphere, vm_path, out, manifest=True)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["snapshots"] == {"count": 2, "current": "snap2"}
    assert any("current state" in w and "snap2" in w for w in manifest["warnings"])
    assert manifest["disks"][0]["checksum"] == f"sha256:{sha256(specs[0].image)}"


@pytest.mark.parametrize("index", range(len(ODD_NAMES)), ids=ODD_NAMES)
def test_vm_names_with_spaces_and_punctuation_export_under_their_own_name(
    vsphere, shapes, tmp_path, ovfcheck, index
):
    vm_path, specs = shapes[f"odd{index}"]
    name = ODD_NAMES[index]
    out = tmp_path / "out"
    result = export(vsphere, vm_path, out, manifest=True)

    assert result.vm_name == name
    assert (out / f"{name}.ovf").is_file() and (out / f"{name}-disk1.vmdk").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["vm_name"] == name
    assert Path(manifest["disks"][0]["local_path"]).read_bytes() == specs[0].image.read_bytes()
    mf = (out / f"{name}.mf").read_text()
    assert f"SHA256({name}-disk1.vmdk)= {sha256(specs[0].image)}\n" in mf
    assert ovfcheck(out / f"{name}.ovf")["name"] == name


def test_hyper2kvm_converts_the_multi_disk_and_efi_manifests(vsphere, shapes, tmp_path, monkeypatch):
    from hyper2kvm.manifest.loader import ManifestLoader

    hyper2kvm = shutil.which("hyper2kvm") or str(Path(sys.executable).parent / "hyper2kvm")
    assert Path(hyper2kvm).is_file(), "hyper2kvm 0.2.1 must be installed in the test environment"
    monkeypatch.chdir(tmp_path)
    for shape in ("multi", "efi_ova"):
        vm_path, specs = shapes[shape]
        out = tmp_path / shape
        result = export(vsphere, vm_path, out, convert=True, hyper2kvm_path=hyper2kvm)
        assert result.conversion.converter == "hyper2kvm"
        manifest = json.loads((out / "manifest.json").read_text())
        for disk, spec in zip(manifest["disks"], specs, strict=True):
            assert identical(spec.image.with_suffix(".raw"), out / "converted" / f"{disk['id']}.qcow2")
        loader = ManifestLoader()
        loader.load(out / "manifest.json")
        assert len(loader.get_disks()) == len(specs)
        assert all(loader.verify_checksums().values())
        assert loader.get_firmware() == ("uefi" if shape == "efi_ova" else "bios")
        assert loader.get_secureboot() is (shape == "efi_ova")


def test_the_independent_reader_refuses_descriptors_that_do_not_hold_together(vsphere, shapes, tmp_path):
    """ovfcheck can fail: a disk naming a missing File, or hung on no controller, is refused."""
    vm_path, _ = shapes["multi"]
    out = tmp_path / "out"
    export(vsphere, vm_path, out)
    good = (out / "multi.ovf").read_text()
    checker = str(build_ovf_checker())
    bad = tmp_path / "bad.ovf"
    try:
        for broken in (
            good.replace('ovf:fileRef="file2"', 'ovf:fileRef="file9"'),
            good.replace("<rasd:Parent>", "<rasd:Parent>9", 1),
            good.replace("</Envelope>", ""),
        ):
            assert broken != good
            bad.write_text(broken)
            assert subprocess.run([checker, str(bad)], capture_output=True).returncode == 1
    finally:
        bad.unlink(missing_ok=True)


def test_multi_disk_efi_vm_with_a_long_non_latin_name_converts_and_verifies(vsphere, shapes, tmp_path):
    vm_path, specs = shapes["efi"]
    out = tmp_path / "out"
    result = export(vsphere, vm_path, out, convert=True, verify=True, manifest_target="vdi")

    assert result.vm_name == LONG_NAME
    assert all(len(p.name.encode()) <= 255 for p in out.rglob("*"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["vm_name"] == LONG_NAME
    assert any(line.endswith(".nvram: sha256 matches the manifest") for line in result.verified)
    for disk, spec in zip(manifest["disks"], specs, strict=True):
        assert identical(spec.image.with_suffix(".raw"), out / "converted" / f"{disk['id']}.vdi")


@pytest.mark.parametrize("compress", [False, True], ids=["ova", "ova-compress"])
def test_multi_disk_efi_vm_with_a_long_non_latin_name_exports_to_an_ova_every_reader_opens(
    vsphere, shapes, tmp_path, compress
):
    from exports.pipeline.names import file_stem
    from tests.tar_readers import gnu_tar_list, go_list, python_list

    vm_path, specs = shapes["efi"]
    out = tmp_path / "out"
    result = export(vsphere, vm_path, out, format="ova", compress=compress, convert=True, verify=True)

    ova = Path(result.package)
    stem = file_stem(LONG_NAME)
    names = [member.name for member in python_list(ova)]
    assert names == [name for name, _ in gnu_tar_list(ova)] == [member["name"] for member in go_list(ova)]
    assert names[:2] == [f"{stem}.ovf", f"{stem}.mf"] and f"{stem}.nvram" in names
    assert len([name for name in names if name.endswith(".vmdk")]) == len(specs)
    with tarfile.open(ova) as tar:
        descriptor = tar.extractfile(f"{stem}.ovf").read().decode()
    assert f"{stem}.nvram" in descriptor and LONG_NAME in descriptor
    assert ('ovf:compression="gzip"' in descriptor) is compress
    manifest = json.loads((out / "manifest.json").read_text())
    for disk, spec in zip(manifest["disks"], specs, strict=True):
        assert identical(spec.image.with_suffix(".raw"), out / "converted" / f"{disk['id']}.qcow2")
