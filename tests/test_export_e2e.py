"""The export pipeline end to end against the vSphere test server: real SOAP, real NFC, real disks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import DownloadError, ExportCancelled
from exports.pipeline.names import file_stem
from exports.pipeline.options import ExportOptions
from exports.pipeline.preflight import Preflight
from exports.pipeline.progress import CancelToken, NullReporter
from exports.pipeline.run import STEPS, export_vm
from tests.conftest import APP01, govc_environment

pytestmark = pytest.mark.vsphere


def target_of(sim) -> VCenterTarget:
    return VCenterTarget.from_env(govc_environment(sim))


def sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def identical(a: Path, b: Path) -> bool:
    return subprocess.run(["qemu-img", "compare", str(a), str(b)], capture_output=True).returncode == 0


def virtual_size(image: Path) -> int:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(image)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)["virtual-size"]


def mf_entries(text: str) -> dict[str, str]:
    entries = {}
    for line in text.splitlines():
        name, digest = line.split(")= ")
        entries[name.removeprefix("SHA256(")] = digest
    return entries


@pytest.mark.parametrize("target", ["qcow2", "raw", "vdi"])
def test_ovf_export_converted_with_qemu_img_is_identical_to_the_seeds(
    vsphere, app01_seeds, tmp_path, monkeypatch, target
):
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")  # no hyper2kvm: the qemu-img path
    options = ExportOptions(
        vm_path=APP01, output_dir=tmp_path / "out", manifest_target=target, convert=True, verify=True
    )
    result = export_vm(options, target_of(vsphere))

    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "app01.ovf",
            "app01.mf",
            "app01-disk1.vmdk",
            "app01-disk2.vmdk",
            "manifest.json",
            "converted",
            "conversion-report.json",
        ]
    )
    mf = mf_entries((out / "app01.mf").read_text())
    assert mf == {
        name: sha256sum(out / name) for name in ("app01.ovf", "app01-disk1.vmdk", "app01-disk2.vmdk")
    }
    manifest = json.loads((out / "manifest.json").read_text())
    for disk, seed in zip(manifest["disks"], app01_seeds, strict=True):
        assert disk["checksum"] == f"sha256:{sha256sum(Path(disk['local_path']))}"
        assert disk["checksum"] == f"sha256:{sha256sum(seed)}"  # byte for byte what vSphere served
        # app01's second disk was added by ReconfigVM_Task at unit 1 of the first one's controller.
        assert disk["capacity_bytes"] == virtual_size(seed) == virtual_size(Path(disk["local_path"]))
        converted = out / "converted" / f"{disk['id']}.{target}"
        assert identical(seed.with_suffix(".raw"), converted)
    assert result.conversion.converter == "qemu-img"
    assert len(result.verified) == 2 + 2 + (0 if target == "raw" else 2)
    assert vsphere.leases()[-1]["state"] == "done"


def test_ova_holds_descriptor_mf_then_disks_and_its_mf_matches_sha256sum(vsphere, app01_seeds, tmp_path):
    result = export_vm(
        ExportOptions(vm_path=APP01, output_dir=tmp_path / "out", format="ova"), target_of(vsphere)
    )
    ova = Path(result.package)
    listing = subprocess.run(["tar", "tf", ova], capture_output=True, text=True, check=True).stdout.split()
    assert listing == ["app01.ovf", "app01.mf", "app01-disk1.vmdk", "app01-disk2.vmdk"]
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "xf", ova, "-C", unpacked], check=True)
    mf = mf_entries((unpacked / "app01.mf").read_text())
    assert mf == {name: sha256sum(unpacked / name) for name in listing if name != "app01.mf"}
    # Without a manifest nothing points at loose disks, so only the OVA remains.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["app01.ova"]


def test_compressed_ova_is_a_plain_tar_that_go_reads_with_gzipped_disks_and_converts(
    vsphere, app01_seeds, tmp_path, monkeypatch
):
    import gzip
    import xml.etree.ElementTree as ET

    from tests.tar_readers import go_list

    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")  # the qemu-img path
    out = tmp_path / "out"
    options = ExportOptions(
        vm_path=APP01, output_dir=out, format="ova", compress=True, convert=True, verify=True
    )
    result = export_vm(options, target_of(vsphere))
    ova = Path(result.package)
    # govc import.ova's reader: a whole-file gzip fails here with "invalid tar header".
    stored = {m["name"]: m for m in go_list(ova, hash_contents=True)}
    assert list(stored) == ["app01.ovf", "app01.mf", "app01-disk1.vmdk", "app01-disk2.vmdk"]
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "xf", ova, "-C", unpacked], check=True)
    assert mf_entries((unpacked / "app01.mf").read_text()) == {
        name: member["sha256"] for name, member in stored.items() if name != "app01.mf"
    }
    ns = "{http://schemas.dmtf.org/ovf/envelope/1}"
    files = ET.parse(unpacked / "app01.ovf").getroot().findall(f"{ns}References/{ns}File")
    for file, seed in zip(files, app01_seeds, strict=True):
        href = file.get(f"{ns}href")
        assert (file.get(f"{ns}compression"), file.get(f"{ns}size")) == ("gzip", str(stored[href]["size"]))
        assert hashlib.sha256(gzip.decompress((unpacked / href).read_bytes())).hexdigest() == sha256sum(seed)
    # The manifest's disks stay uncompressed beside the OVA; conversion and -verify read them.
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["package"] == {"format": "ova", "file": "app01.ova", "compressed": True}
    for disk, seed in zip(manifest["disks"], app01_seeds, strict=True):
        assert disk["checksum"] == f"sha256:{sha256sum(seed)}"
        assert identical(seed.with_suffix(".raw"), out / "converted" / f"{disk['id']}.qcow2")
    assert result.verified
    assert not (out / ".ova-staging").exists()


def test_vm_with_an_80_character_japanese_name_exports_to_a_compressed_ova_every_reader_opens(
    tmp_path, monkeypatch
):
    import xml.etree.ElementTree as ET

    from pyVim.task import WaitForTask

    from tests.conftest import start_simulator
    from tests.tar_readers import gnu_tar_list, go_list, python_list
    from tests.vsphere_sim.harness import make_stream_vmdk

    # vSphere's longest name (80 characters) in 4-byte kanji, with what vCenter allows in it
    # ("/" is stored as %2f): 296 bytes of UTF-8, more than a Linux file name may hold.
    name = ("𠮷𩸽𠀋" * 24) + " & #%2f."
    sim = start_simulator(tmp_path / "vsphere")  # its own: the VM is renamed
    try:
        seed = make_stream_vmdk(tmp_path / "seeds" / "d1.vmdk", 4)
        sim.seed_disks(APP01, [seed])
        WaitForTask(sim.find_vm(APP01).Rename_Task(newName=name))
        monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        out = tmp_path / "out"
        options = ExportOptions(
            vm_path=f"/dc/vm/prod/{name}",
            output_dir=out,
            format="ova",
            compress=True,
            convert=True,
            verify=True,
        )
        result = export_vm(options, target_of(sim))
    finally:
        sim.stop()
    ova = Path(result.package)
    stem = ova.name.removesuffix(".ova")
    # The files' stem is the name cut at a character (plus a digest) so every file name fits 255 bytes.
    assert len(name) == 80 and stem == file_stem(name) and len(stem) < len(name)
    assert len(f"{stem}-disk1.vmdk.part".encode()) <= 255
    members = [f"{stem}.ovf", f"{stem}.mf", f"{stem}-disk1.vmdk"]
    assert [m.name for m in python_list(ova)] == members
    assert [n for n, _ in gnu_tar_list(ova)] == members
    assert [m["name"] for m in go_list(ova)] == members
    with tarfile.open(ova) as tar:
        envelope = ET.fromstring(tar.extractfile(members[0]).read())
    ns = "{http://schemas.dmtf.org/ovf/envelope/1}"
    assert envelope.find(f"{ns}VirtualSystem").get(f"{ns}id") == name  # the VM keeps its whole name
    assert envelope.find(f"{ns}References/{ns}File").get(f"{ns}compression") == "gzip"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["vm_name"] == name
    assert identical(seed.with_suffix(".raw"), Path(result.conversion.outputs[0].output))


def test_descriptor_describes_the_downloaded_files(vsphere, app01_seeds, tmp_path):
    import xml.etree.ElementTree as ET

    export_vm(ExportOptions(vm_path=APP01, output_dir=tmp_path), target_of(vsphere))
    ns = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1"}
    root = ET.parse(tmp_path / "app01.ovf").getroot()
    files = {
        f.get(f"{{{ns['ovf']}}}href"): int(f.get(f"{{{ns['ovf']}}}size"))
        for f in root.iterfind("ovf:References/ovf:File", ns)
    }
    assert files == {p.name: p.stat().st_size for p in sorted(tmp_path.glob("*.vmdk"))}


def test_lease_keepalive_outlives_the_lease_timeout(slow_vsphere, tmp_path):
    sim, image = slow_vsphere
    result = export_vm(ExportOptions(vm_path="/dc/vm/prod/db01", output_dir=tmp_path), target_of(sim))
    report = sim.leases()[-1]
    assert report["completed"] and not report["timed_out"]
    assert report["progress_calls"] >= 2  # the transfer took > 2 lease timeouts
    assert result.files[0].sha256 == sha256sum(image)


class ProgressLog(NullReporter):
    def __init__(self) -> None:
        self.snapshots = []
        self.moving = threading.Event()

    def progress(self, snapshot) -> None:
        self.snapshots.append(snapshot)
        if snapshot.bytes_done > 0:
            self.moving.set()


def test_cancel_mid_transfer_aborts_the_lease_and_leaves_nothing(slow_vsphere, tmp_path):
    sim, image = slow_vsphere
    reporter, cancel, outcome = ProgressLog(), CancelToken(), {}
    out = tmp_path / "out"

    def run() -> None:
        try:
            export_vm(
                ExportOptions(vm_path="/dc/vm/prod/db01", output_dir=out), target_of(sim), reporter, cancel
            )
        except ExportCancelled as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert reporter.moving.wait(60), "the download never started"
    cancel.cancel()
    worker.join(60)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), ExportCancelled)
    report = sim.leases()[-1]
    assert report["aborted"] and not report["completed"]
    assert report["bytes_served"] < image.stat().st_size  # the transfer really stopped
    assert not out.exists()


def test_progress_counts_bytes_against_the_file_size_not_the_capacity(slow_vsphere, tmp_path):
    sim, image = slow_vsphere
    reporter = ProgressLog()
    export_vm(ExportOptions(vm_path="/dc/vm/prod/db01", output_dir=tmp_path), target_of(sim), reporter)
    downloading = [s for s in reporter.snapshots if s.phase == "downloading"]
    assert downloading and all(s.bytes_total == image.stat().st_size for s in downloading)
    assert any(0 < s.percent < 100 for s in downloading)


def test_a_dropped_download_is_retried_under_a_new_lease(vsphere, app01_seeds, tmp_path):
    vsphere.drop_downloads(after=1 << 20, count=1)
    options = ExportOptions(vm_path=APP01, output_dir=tmp_path, retry_backoff=0.1)
    result = export_vm(options, target_of(vsphere))
    first, second = vsphere.leases()[-2:]
    assert first["aborted"] and second["completed"]
    assert [f.sha256 for f in result.files] == [sha256sum(seed) for seed in app01_seeds]


def test_retries_are_bounded(vsphere, app01_seeds, tmp_path):
    vsphere.drop_downloads(after=1 << 20, count=100)
    options = ExportOptions(vm_path=APP01, output_dir=tmp_path / "out", retry_backoff=0.1, max_attempts=2)
    try:
        with pytest.raises(DownloadError, match="after 2 attempts"):
            export_vm(options, target_of(vsphere))
    finally:
        vsphere.drop_downloads(after=0, count=0)
    assert not (tmp_path / "out").exists()
    assert all(lease["aborted"] for lease in vsphere.leases()[-2:])


def test_disk_full_removes_partial_files_and_aborts_the_lease(vsphere, app01_seeds, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], check=True)
    try:
        out = small / "out"
        # The download's own handling of a full disk: preflight's free-space check would refuse
        # this export before its lease (tests/test_preflight_checks.py), so it is left out here.
        steps = [step for step in STEPS if not isinstance(step, Preflight)]
        with pytest.raises(DownloadError, match=r"disk full writing .* \(ENOSPC\): partial files removed"):
            export_vm(ExportOptions(vm_path=APP01, output_dir=out), target_of(vsphere), steps=steps)
        assert list(small.iterdir()) == []
        assert vsphere.leases()[-1]["aborted"]
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_hyper2kvm_path_converts_with_the_real_tool(vsphere, app01_seeds, tmp_path):
    import shutil

    hyper2kvm = shutil.which("hyper2kvm")
    assert hyper2kvm, "hyper2kvm 0.2.1 must be installed in the test environment"
    options = ExportOptions(
        vm_path=APP01, output_dir=tmp_path, convert=True, verify=True, hyper2kvm_path=hyper2kvm
    )
    result = export_vm(options, target_of(vsphere))
    assert result.conversion.converter == "hyper2kvm"
    tool_report = json.loads(Path(result.conversion.converter_report).read_text())
    assert tool_report["pipeline"]["success"] is True
    for seed in app01_seeds:
        assert identical(seed.with_suffix(".raw"), tmp_path / "converted" / f"{seed.stem}.qcow2")


def test_export_sha256_matches_an_independent_hash_of_the_served_bytes(vsphere, app01_seeds, tmp_path):
    result = export_vm(ExportOptions(vm_path=APP01, output_dir=tmp_path), target_of(vsphere))
    for file, seed in zip(result.files, app01_seeds, strict=True):
        assert file.sha256 == hashlib.sha256(seed.read_bytes()).hexdigest()
        assert file.size == seed.stat().st_size
