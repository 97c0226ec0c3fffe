"""Permission and quota errors while writing the output: one clear line naming the file, no
retry under a new lease (a new lease cannot make the output writable), the lease aborted and
nothing of the run left behind.

The errors come from the kernel where this machine can make them for root (a read-only
filesystem); EACCES and EDQUOT cannot be provoked for root without quotas or a second user,
so the download's own ``os`` calls are made to fail with them.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

import exports.pipeline.download as download
from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import ExportError
from exports.pipeline.options import ExportOptions
from exports.pipeline.run import export_vm
from tests.conftest import APP01, govc_environment

pytestmark = pytest.mark.vsphere


class FailingOS:
    """``os`` for the download module, failing its part files' open or their writes with ``errno``
    (writes after ``after`` bytes, so a partial file exists to be removed)."""

    def __init__(self, *, open_errno: int | None = None, write_errno: int | None = None, after: int = 0):
        self.open_errno, self.write_errno, self.after = open_errno, write_errno, after
        self.written = 0
        self.failed = 0

    def __getattr__(self, name: str):
        return getattr(os, name)

    def open(self, path, flags, *args, **kwargs):
        if self.open_errno and str(path).endswith(".part"):
            self.failed += 1
            raise OSError(self.open_errno, os.strerror(self.open_errno), str(path))
        return os.open(path, flags, *args, **kwargs)

    def write(self, fd: int, data) -> int:
        if self.write_errno and self.written >= self.after:
            self.failed += 1
            raise OSError(self.write_errno, os.strerror(self.write_errno))
        count = os.write(fd, data)
        self.written += count
        return count


def export_app01(vsphere, output):
    options = ExportOptions(vm_path=APP01, output_dir=output, retry_backoff=0.1)
    return export_vm(options, VCenterTarget.from_env(govc_environment(vsphere)))


@pytest.mark.parametrize(
    ("faulty", "reason"),
    [
        (FailingOS(open_errno=errno.EACCES), "Permission denied"),
        (FailingOS(write_errno=errno.EDQUOT, after=1 << 20), "Disk quota exceeded"),
        (FailingOS(write_errno=errno.EROFS, after=1 << 20), "Read-only file system"),
    ],
    ids=["EACCES-on-open", "EDQUOT-on-write", "EROFS-on-write"],
)
def test_an_unwritable_output_fails_the_export_at_once_naming_the_file(
    vsphere, app01_seeds, tmp_path, monkeypatch, faulty, reason
):
    monkeypatch.setattr(download, "os", faulty)
    leases_before = len(vsphere.leases())
    output = tmp_path / "out"
    with pytest.raises(ExportError) as failure:
        export_app01(vsphere, output)
    assert faulty.failed >= 1, "the injected error was never met"
    assert str(failure.value) in {f"cannot write {output}/app01-disk{n}.vmdk: {reason}" for n in (1, 2)}
    leases = vsphere.leases()[leases_before:]
    assert len(leases) == 1 and leases[0]["aborted"]  # not retried under a new lease
    assert not output.exists()  # the run made it: the run removes it, partial files and all


@pytest.fixture
def read_only_directory(tmp_path):
    """An existing, empty directory on a tmpfs mounted read-only (we run as root, so file modes
    would not stop us: a read-only mount does)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "out").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "out"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_read_only_output_directory_fails_before_any_lease_is_opened(
    vsphere, app01_seeds, read_only_directory
):
    leases_before = len(vsphere.leases())
    with pytest.raises(ExportError) as failure:
        export_app01(vsphere, read_only_directory)
    # Refused by the preflight now, with what to do after the reason PrepareOutput gave.
    assert str(failure.value).startswith(f"output directory {read_only_directory} is not writable: ")
    assert len(vsphere.leases()) == leases_before
    assert list(read_only_directory.iterdir()) == []
