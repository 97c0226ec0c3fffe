"""Conversion with real qemu-img and real hyper2kvm, and verification that catches corruption."""

import hashlib
import json
import shutil
import subprocess

import pytest

from exports.pipeline.convert import REPORT_NAME, convert_export
from exports.pipeline.errors import ConversionError, VerificationError
from exports.pipeline.files import sha256_file
from exports.pipeline.formats import TARGET_FORMATS
from exports.pipeline.progress import CancelToken, NullReporter
from exports.pipeline.verify import verify_export
from tests.conftest import seed_of


def _convert(document, disks, hyper2kvm=None, timeout=600):
    return convert_export(
        document,
        disks[0].path.parent,
        hyper2kvm=hyper2kvm,
        timeout_seconds=timeout,
        compress=False,
        reporter=NullReporter(),
        cancel=CancelToken(),
    )


def _identical(a, b) -> bool:
    return subprocess.run(["qemu-img", "compare", str(a), str(b)], capture_output=True).returncode == 0


@pytest.mark.parametrize("target", TARGET_FORMATS)  # a new target format is tested here too
def test_qemu_img_conversion_is_identical_to_the_seed(exported_disks, write_test_manifest, target):
    document = write_test_manifest(exported_disks, target)
    report = _convert(document, exported_disks)
    assert report.converter == "qemu-img"
    assert len(report.outputs) == 2
    for output in report.outputs:
        assert output.output.endswith(f".{target}")
        assert _identical(seed_of(output.source), output.output)
        assert output.sha256 == sha256_file(output.output)
    written = json.loads((exported_disks[0].path.parent / REPORT_NAME).read_text())
    assert written["outputs"][0]["size"] > 0
    checks = verify_export(
        document, report, timeout_seconds=600, reporter=NullReporter(), cancel=CancelToken()
    )
    assert any("identical" in check for check in checks)


def test_hyper2kvm_conversion_uses_its_manifest_flag(exported_disks, write_test_manifest):
    binary = shutil.which("hyper2kvm")
    assert binary, "hyper2kvm must be installed in the test environment"
    document = write_test_manifest(exported_disks, "qcow2")
    report = _convert(document, exported_disks, hyper2kvm=binary)
    assert report.converter == "hyper2kvm"
    assert report.converter_report and report.converter_report.endswith("report.json")
    for disk in exported_disks:
        output = disk.path.parent / "converted" / f"{disk.path.stem}.qcow2"
        assert _identical(seed_of(disk.path), output)


def test_a_missing_hyper2kvm_path_is_a_clear_error(exported_disks, write_test_manifest):
    from exports.pipeline.convert import find_hyper2kvm

    with pytest.raises(ConversionError, match="hyper2kvm not found"):
        find_hyper2kvm("/nonexistent/hyper2kvm")


def test_a_converter_that_hangs_is_killed_at_the_timeout(exported_disks, write_test_manifest, tmp_path):
    hanging = tmp_path / "hyper2kvm"
    hanging.write_text("#!/bin/sh\nsleep 600\n")
    hanging.chmod(0o755)
    document = write_test_manifest(exported_disks)
    with pytest.raises(ConversionError, match="timed out"):
        _convert(document, exported_disks, hyper2kvm=str(hanging), timeout=1)


def test_verify_fails_when_a_disk_no_longer_matches_the_manifest(exported_disks, write_test_manifest):
    document = write_test_manifest(exported_disks)
    with open(exported_disks[1].path, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"corrupted")
    with pytest.raises(VerificationError, match="checksum mismatch for app01-disk2.vmdk"):
        verify_export(document, None, timeout_seconds=60, reporter=NullReporter(), cancel=CancelToken())


def test_verify_fails_when_an_output_differs_from_its_source(exported_disks, write_test_manifest):
    document = write_test_manifest(exported_disks, "raw")
    report = _convert(document, exported_disks)
    with open(report.outputs[0].output, "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * 16)
    with pytest.raises(VerificationError, match="differs from its source"):
        verify_export(document, report, timeout_seconds=60, reporter=NullReporter(), cancel=CancelToken())


@pytest.mark.parametrize(
    "islands",
    [{}, {0: b"a"}, {(40 << 20) - 1: b"z"}, {4096: b"x" * 9000, 17 << 20: b"y" * (9 << 20)}],
)
def test_sparse_hash_of_a_converted_output_equals_a_plain_read(tmp_path, islands):
    from exports.pipeline.files import sha256_sparse_file

    image = tmp_path / "out.raw"
    with open(image, "wb") as f:
        f.truncate(40 << 20)  # a hole of 40 MiB with data islands, as a raw output of a thin disk
        for offset, data in islands.items():
            f.seek(offset)
            f.write(data)
    assert sha256_sparse_file(image) == hashlib.sha256(image.read_bytes()).hexdigest()
