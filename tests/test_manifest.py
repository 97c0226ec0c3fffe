"""The Artifact Manifest: the guide's fields and hyper2kvm's, validated, absolute paths."""

import json
import os

import pytest
from hyper2kvm.manifest.loader import ManifestLoader

from exports.pipeline.manifest import MANIFEST_NAME, memory_gib, read_manifest, validate_manifest


def test_manifest_has_the_guides_fields(exported_disks, write_test_manifest):
    document = write_test_manifest(exported_disks)
    assert document["version"] == "1.0"
    source = document["source"]
    assert (source["provider"], source["vm_name"], source["export_date"]) == (
        "vsphere",
        "app01",
        "2026-01-22T10:30:00Z",
    )
    first = document["disks"][0]
    assert first["path"] == "app01-disk1.vmdk"
    assert first["format"] == "vmdk"
    assert first["size"] == exported_disks[0].size
    assert first["checksum"] == f"sha256:{exported_disks[0].sha256}"
    assert document["conversion"] == {"target_format": "qcow2", "verify_checksums": True}


def test_paths_are_absolute_so_hyper2kvm_runs_from_anywhere(exported_disks, write_test_manifest):
    document = write_test_manifest(exported_disks)
    assert all(os.path.isabs(d["local_path"]) and os.path.exists(d["local_path"]) for d in document["disks"])
    assert os.path.isabs(document["output"]["directory"])


def test_hyper2kvm_loader_accepts_the_manifest_and_its_checksums(
    exported_disks, write_test_manifest, tmp_path
):
    write_test_manifest(exported_disks)
    loader = ManifestLoader()
    os.chdir(tmp_path)  # its loader resolves relative paths here: ours are absolute
    loader.load(exported_disks[0].path.parent / MANIFEST_NAME)
    assert [d.id for d in loader.get_disks()] == ["app01-disk1", "app01-disk2"]
    assert loader.verify_checksums() == {"app01-disk1": True, "app01-disk2": True}
    assert loader.get_vm_metadata()["mem_gb"] == 3  # 3000 MB rounds up


def test_schema_rejects_a_bad_checksum(exported_disks, write_test_manifest):
    document = write_test_manifest(exported_disks)
    document["disks"][0]["checksum"] = "md5:abc"
    with pytest.raises(ValueError, match="disks/0/checksum"):
        validate_manifest(document)


def test_written_manifest_reads_back_valid(exported_disks, write_test_manifest):
    write_test_manifest(exported_disks)
    path = exported_disks[0].path.parent / MANIFEST_NAME
    assert read_manifest(path) == json.loads(path.read_text())


@pytest.mark.parametrize(("mem_mb", "mem_gb"), [(32, 1), (1024, 1), (1025, 2), (3000, 3), (0, 1)])
def test_mem_gb_is_mem_mb_rounded_up_to_whole_gib(mem_mb, mem_gb):
    assert memory_gib(mem_mb) == mem_gb
    assert memory_gib(mem_mb) * 1024 >= mem_mb  # a KVM guest never gets less than the VM had


def test_hyper2kvm_refuses_a_fractional_mem_gb_so_it_stays_whole(
    exported_disks, write_test_manifest, tmp_path
):
    """Why ``mem_gb`` is rounded to a whole GiB and not given as 0.03 for 32 MiB."""
    document = write_test_manifest(exported_disks)
    document["vm"]["mem_gb"] = 0.03
    path = tmp_path / "fractional.json"
    path.write_text(json.dumps(document))
    with pytest.raises(Exception, match="mem_gb must be an integer"):
        ManifestLoader().load(path)
