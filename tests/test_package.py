"""OVF manifest lines and OVA layout, read back with the standard tar tool."""

import hashlib
import subprocess

from exports.pipeline.descriptor import write_descriptor_and_manifest
from exports.pipeline.package import write_ova

DESCRIPTOR = '<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>'


def test_mf_lists_sha256_of_descriptor_and_disks(exported_disks):
    out = exported_disks[0].path.parent
    ovf, mf = write_descriptor_and_manifest(out, "app01", DESCRIPTOR, exported_disks)
    lines = mf.read_text().splitlines()
    assert lines[0] == f"SHA256(app01.ovf)= {hashlib.sha256(ovf.read_bytes()).hexdigest()}"
    assert lines[1:] == [f"SHA256({d.path.name})= {d.sha256}" for d in exported_disks]
    assert not list(out.glob("*.part"))


def test_ova_puts_descriptor_first_then_mf_then_disks(exported_disks, tmp_path):
    out = exported_disks[0].path.parent
    ovf, mf = write_descriptor_and_manifest(tmp_path, "app01", DESCRIPTOR, exported_disks)
    ova = write_ova(out / "app01.ova", [ovf, mf, *[d.path for d in exported_disks]], compress=False)
    listing = subprocess.run(["tar", "tf", ova], capture_output=True, text=True, check=True).stdout.split()
    assert listing == ["app01.ovf", "app01.mf", "app01-disk1.vmdk", "app01-disk2.vmdk"]


def test_compressed_ova_is_a_gzip_tar_that_tar_extracts(exported_disks, tmp_path):
    out = exported_disks[0].path.parent
    ovf, mf = write_descriptor_and_manifest(tmp_path, "app01", DESCRIPTOR, exported_disks)
    ova = write_ova(out / "app01.ova", [ovf, mf, *[d.path for d in exported_disks]], compress=True)
    assert ova.read_bytes()[:2] == b"\x1f\x8b"
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run(["tar", "xf", ova, "-C", extract], check=True)
    for disk in exported_disks:
        assert hashlib.sha256((extract / disk.path.name).read_bytes()).hexdigest() == disk.sha256
