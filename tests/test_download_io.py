"""How a download uses the machine: few, large network reads and no page cache left behind.

These are the costs the export benchmark (bench/export.py) measures as CPU seconds per GiB; the
tests check the mechanisms, not a time: the system calls of a real export (strace) and the
disk's pages resident after it (fincore), with O_DIRECT and on filesystems that refuse it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections import defaultdict
from functools import partial
from pathlib import Path

import pytest

import exports.pipeline.download as download
from exports.pipeline.connect import VCenterTarget, session_cookie
from exports.pipeline.download import download_disk
from exports.pipeline.errors import DownloadError
from exports.pipeline.files import WriteBehind
from exports.pipeline.lease import DiskSource
from exports.pipeline.options import ExportOptions
from exports.pipeline.progress import CancelToken, NullReporter, TransferMeter
from exports.pipeline.run import export_vm
from tests.cli_runner import BIN
from tests.conftest import APP01, govc_environment

pytestmark = pytest.mark.vsphere

TLS_RECORD = 16 * 1024 + 256  # the most one TLS record carries, with its header and tag
# read(fd<socket:[inode]>, ..., size) = count  (strace -y; recvfrom has more arguments)
SOCKET_READ = re.compile(r"^(?:read|recvfrom)\(\d+<(socket:\[\d+\]|TCP:\[[^\]]+\])>.*\)\s+= (\d+)$")


def socket_reads(trace_prefix: Path) -> dict[str, list[int]]:
    """The byte counts of every read of each socket, from ``strace -ff -y`` files."""
    reads: dict[str, list[int]] = defaultdict(list)
    for trace in trace_prefix.parent.glob(trace_prefix.name + ".*"):
        for line in trace.read_text(errors="replace").splitlines():
            if match := SOCKET_READ.match(line):
                reads[match.group(1)].append(int(match.group(2)))
    return reads


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (Debian package strace)")
def test_a_download_reads_the_network_in_pieces_larger_than_a_tls_record(vsphere, app01_seeds, tmp_path):
    # ssl.SSLSocket made two read(2) calls per TLS record (its 5-byte header, then the rest):
    # about 131,000 calls per GiB, each also a TCP window update.
    prefix = tmp_path / "trace"
    env = {**os.environ, **govc_environment(vsphere)}
    command = [str(BIN / "hyperexport"), "-vm", APP01, "-output", str(tmp_path / "out"), "-quiet"]
    subprocess.run(
        ["strace", "-f", "-ff", "-y", "-s", "0", "-e", "trace=read,recvfrom", "-o", str(prefix), *command],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    reads = socket_reads(prefix)
    disk_bytes = max(seed.stat().st_size for seed in app01_seeds)
    # The connection that carried the larger disk: the one that read the most.
    counts = max(reads.values(), key=sum)
    assert sum(counts) >= disk_bytes
    assert len(counts) < sum(counts) / TLS_RECORD, (
        f"{len(counts)} reads for {sum(counts)} bytes: not fewer than the TLS records"
    )


class NoDirectIO:
    """``os`` for the download module on a filesystem without O_DIRECT: refused when the file is
    opened (tmpfs before Linux 6.6, FUSE), or only when written (an alignment the device wants)."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.refused = 0

    def __getattr__(self, name: str):
        return getattr(os, name)

    def _einval(self):
        self.refused += 1
        return OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    def open(self, path, flags, *args, **kwargs):
        if self.refuse == "open" and flags & os.O_DIRECT:
            raise self._einval()
        return os.open(path, flags, *args, **kwargs)

    def write(self, fd: int, data) -> int:
        if self.refuse == "write" and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise self._einval()
        return os.write(fd, data)


def skip_unless_page_cache_is_observable(directory: Path) -> None:
    if shutil.which("fincore") is None:
        pytest.skip("needs fincore (Debian package util-linux)")
    command = ["stat", "-f", "-c", "%T", str(directory)]
    if subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip() == "tmpfs":
        pytest.skip("a tmpfs file lives in the page cache")


def resident_bytes(path: Path) -> int:
    command = ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)]
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())


@pytest.mark.parametrize(
    "refuse", [None, "open", "write"], ids=["o-direct", "no-o-direct", "o-direct-refused"]
)
def test_a_downloaded_disk_does_not_stay_in_the_page_cache(
    vsphere, app01_seeds, tmp_path, monkeypatch, refuse
):
    skip_unless_page_cache_is_observable(tmp_path)
    if refuse:
        faulty = NoDirectIO(refuse)
        monkeypatch.setattr(download, "os", faulty)
    options = ExportOptions(vm_path=APP01, output_dir=tmp_path / "out")
    result = export_vm(options, VCenterTarget.from_env(govc_environment(vsphere)))
    if refuse:
        assert faulty.refused >= 1, "O_DIRECT was never refused"
    for file, seed in zip(result.files, app01_seeds, strict=True):
        path = tmp_path / "out" / file.name
        # Written, fsynced, then dropped (or never cached): an export of many GiB does not push
        # the rest of the machine's cache out (the descriptor step may read a page or two back).
        resident = resident_bytes(path)  # before the hash below reads the file back
        assert resident <= 64 << 10, f"{path.name}: {resident} bytes still cached"
        assert sha256_of(path) == sha256_of(seed) == file.sha256


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_a_file_written_behind_keeps_at_most_two_windows_in_the_page_cache(tmp_path):
    # The path a download takes where O_DIRECT is refused, on a file many windows long.
    skip_unless_page_cache_is_observable(tmp_path)
    window, chunk = 1 << 20, os.urandom(256 << 10)
    path = tmp_path / "disk.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        behind = WriteBehind(fd, window)
        for written in range(len(chunk), 16 * window + 1, len(chunk)):
            os.write(fd, chunk)
            behind.written(written)
        resident = resident_bytes(path)
    finally:
        os.close(fd)
    assert resident <= 2 * window + len(chunk), f"{resident} bytes of {16 * window} still cached"


@pytest.mark.parametrize("thumbprint", ["right", "wrong"])
def test_a_download_trusts_the_nfc_host_only_by_the_thumbprint_the_lease_gave(
    vsphere, app01_seeds, tmp_path, thumbprint
):
    lease, url = vsphere.nfc_url(APP01)
    try:
        given = lease.info.deviceUrl[0].sslThumbprint
        source = DiskSource(
            key="disk-0",
            url=url,
            target_id="disk-0",
            ssl_thumbprint=given
            if thumbprint == "right"
            else ("11:" if given[:2] == "00" else "00:") + given[3:],
            file_size=None,
            capacity_bytes=0,
        )
        target = VCenterTarget.from_env(govc_environment(vsphere))
        cookie = session_cookie(vsphere.service_instance())
        fetch = partial(
            download_disk,
            source,
            tmp_path / "disk.vmdk",
            target=target,
            cookie=cookie,
            meter=TransferMeter(NullReporter()),
            cancel=CancelToken(),
        )
        if thumbprint == "right":
            assert fetch().sha256 == sha256_of(app01_seeds[0])
        else:
            with pytest.raises(DownloadError, match="TLS thumbprint .* does not match") as failure:
                fetch()
            assert not failure.value.retryable
            assert list(tmp_path.iterdir()) == []
    finally:
        lease.HttpNfcLeaseComplete()
