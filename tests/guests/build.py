"""Two tiny real guests, built from Debian packages, that print a marker line and power off.

``bios_guest()`` and ``efi_guest()`` return raw disk images (34 MiB each):

- BIOS: an MBR label with one bootable FAT partition; syslinux's MBR code, its boot sector
  and ``ldlinux.sys``; ``syslinux.cfg`` boots Debian's kernel with a busybox initramfs.
- EFI: a GPT label with an EFI System Partition holding ``/EFI/BOOT/BOOTX64.EFI``, a unified
  kernel image (systemd-boot's EFI stub with the kernel, initramfs and command line added as
  sections by ``objcopy``: systemd 252 has no ukify). Unsigned: it boots with secure boot off.

The initramfs's ``/init`` prints ``marker(variant)`` on the serial console (``console=ttyS0``)
and powers off; the marker names the image and the firmware the kernel found itself booted
by, so an image booted by the wrong firmware never prints the expected line.

Nothing is mounted and nothing is installed: the kernel (the package ``linux-image-amd64``
depends on) and ``busybox-static`` are fetched with ``apt-get download`` and only the files
needed are taken out; the FAT file system is built as a file (``mkfs.vfat``, mtools) and
copied into the partition that ``sfdisk`` made on the image file.

Each image is built once per machine in ``$HYPERSDK_GUEST_CACHE`` (default
``~/.cache/hypersdk/guests``), named by a digest of its inputs (this recipe, the Debian
packages' SHA-256, the boot loader files), so it is rebuilt only when one of them changes.
Builds take a lock and write to a temporary directory renamed into place, so two test
processes building at once never see half an image. A missing tool or package fails with the
Debian package to install (``make system-deps``), never a skip.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["BIOS", "EFI", "GuestBuildError", "bios_guest", "cache_dir", "efi_guest", "marker"]

BIOS = "bios"
EFI = "efi"
MARKER = "HYPERSDK-BOOT-OK"

KERNEL_METAPACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
EFI_STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
# Tools and files, each with the Debian package that brings it.
TOOLS = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "sfdisk": "fdisk",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "syslinux": "syslinux",
    "objcopy": "binutils",
    "objdump": "binutils",
}
FILES = {SYSLINUX_MBR: "syslinux-common", EFI_STUB: "systemd-boot-efi"}

SECTOR = 512
PART_START = 2048  # sectors: the 1 MiB alignment partitioning tools use
FS_SECTORS = 32 * 1024 * 1024 // SECTOR  # FAT16: room for the kernel (~8 MiB) twice over
DISK_BYTES = (PART_START + FS_SECTORS + 2048) * SECTOR  # the tail holds GPT's backup header
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
VOLUME_ID = "48595045"  # fixed, so two builds of the same inputs match byte for byte

INIT = """#!/bin/sh
# PID 1 of the HyperSDK test guest: say which image booted under which firmware, power off.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
image=unknown
for word in $(/bin/busybox cat /proc/cmdline); do
    case "$word" in hypersdk.image=*) image="${word#hypersdk.image=}" ;; esac
done
firmware=bios
[ -d /sys/firmware/efi ] && firmware=efi
echo "MARKER image=$image firmware=$firmware"
/bin/busybox poweroff -f
""".replace("MARKER", MARKER)

OS_RELEASE = 'ID=hypersdk-test-guest\nNAME="HyperSDK test guest"\nVERSION_ID=1\n'


class GuestBuildError(RuntimeError):
    """A guest image cannot be built on this machine; the message says what to install."""


class _AptMiss(Exception):
    """apt found nothing or could not download: the package lists may be missing or stale."""


@dataclass(frozen=True)
class _Deb:
    name: str
    version: str
    sha256: str


def marker(variant: str) -> str:
    """The line the ``variant`` guest prints when booted by the firmware it was built for."""
    return f"{MARKER} image={variant} firmware={variant}"


def cache_dir() -> Path:
    base = os.environ.get("HYPERSDK_GUEST_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "hypersdk" / "guests"


def bios_guest() -> Path:
    """The BIOS guest's raw disk image (MBR, syslinux), built on first use."""
    return _guest(BIOS)


def efi_guest() -> Path:
    """The EFI guest's raw disk image (GPT, ESP, unified kernel image), built on first use."""
    return _guest(EFI)


_lists_updated = False


def _guest(variant: str) -> Path:
    global _lists_updated
    _check_tools(variant)
    try:
        return _build(variant)
    except _AptMiss as miss:
        # A fresh machine has no package lists, and old lists name files the mirror dropped:
        # refresh them once, then try again.
        if _lists_updated:
            raise GuestBuildError(str(miss)) from None
        _lists_updated = True
        _packages.cache_clear()
        _run(["apt-get", "update", "-qq"], what="apt-get update (needed to download Debian packages)")
        try:
            return _build(variant)
        except _AptMiss as again:
            raise GuestBuildError(str(again)) from None


def _check_tools(variant: str) -> None:
    files = [SYSLINUX_MBR] if variant == BIOS else [EFI_STUB]
    missing = {package for tool, package in TOOLS.items() if _which(tool) is None}
    missing |= {FILES[path] for path in files if not path.is_file()}
    if missing:
        raise GuestBuildError(
            f"building the {variant} test guest needs the Debian packages {', '.join(sorted(missing))} "
            "(make system-deps installs them)"
        )


def _which(tool: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(tool, path=path)


def _run(command: list[str], *, what: str, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    proc = subprocess.run(
        [_which(command[0]) or command[0], *command[1:]], cwd=cwd, input=stdin, capture_output=True
    )
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).decode(errors="replace").strip()
        raise GuestBuildError(f"{what} failed (exit {proc.returncode}): {output}")
    return proc.stdout.decode(errors="replace")


def _build(variant: str) -> Path:
    kernel, busybox = _packages()
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    image = cache / f"{variant}-{_digest(variant, kernel, busybox)}.raw"
    if image.is_file():
        return image
    with _locked(cache), tempfile.TemporaryDirectory(dir=cache, prefix=f".{variant}-") as work:
        if image.is_file():  # another process built it while this one waited
            return image
        work = Path(work)
        vmlinuz = _part(cache, kernel, "./boot/vmlinuz-*", "vmlinuz")
        initrd = work / "initrd.img"
        initrd.write_bytes(_initramfs(_part(cache, busybox, "./bin/busybox", "busybox").read_bytes()))
        cmdline = f"console=ttyS0 panic=1 hypersdk.image={variant}"
        raw = work / "disk.raw"
        if variant == BIOS:
            _bios_image(raw, work, vmlinuz, initrd, cmdline)
        else:
            _efi_image(raw, work, vmlinuz, initrd, cmdline)
        os.replace(raw, image)
    for old in cache.glob(f"{variant}-*.raw"):
        if old != image:
            old.unlink(missing_ok=True)
    return image


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    with open(cache / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _digest(variant: str, kernel: _Deb, busybox: _Deb) -> str:
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(f"\0{variant}\0{kernel.name}\0{kernel.sha256}\0{busybox.sha256}\0".encode())
    if variant == BIOS:
        h.update(SYSLINUX_MBR.read_bytes())
        h.update(Path(_which("syslinux")).read_bytes())  # carries the boot sector and ldlinux.sys
    else:
        h.update(EFI_STUB.read_bytes())
    return h.hexdigest()[:16]


# -- Debian packages -------------------------------------------------------------------------


@cache
def _packages() -> tuple[_Deb, _Deb]:
    """The kernel package ``linux-image-amd64`` depends on now (e.g. linux-image-6.1.0-57-amd64)
    and ``busybox-static``, as apt's lists give them (two ``apt-cache`` calls, once a process)."""
    first = _apt_show(KERNEL_METAPACKAGE, BUSYBOX_PACKAGE)
    kernels = re.findall(r"\blinux-image-[^\s,|]+", first[KERNEL_METAPACKAGE].get("Depends", ""))
    if not kernels:
        raise _AptMiss(f"{KERNEL_METAPACKAGE} depends on no linux-image package")
    kernel = _apt_show(kernels[0])[kernels[0]]
    return (
        _Deb(kernels[0], kernel["Version"], kernel["SHA256"]),
        _Deb(BUSYBOX_PACKAGE, first[BUSYBOX_PACKAGE]["Version"], first[BUSYBOX_PACKAGE]["SHA256"]),
    )


def _apt_show(*packages: str) -> dict[str, dict[str, str]]:
    proc = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *packages], capture_output=True, text=True
    )
    found = {}
    for stanza in proc.stdout.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|SHA256|Depends): (.*)$", stanza, re.MULTILINE))
        if "Package" in fields and "Version" in fields and "SHA256" in fields:
            found[fields["Package"]] = fields
    missing = [package for package in packages if package not in found]
    if missing:
        raise _AptMiss(
            f"apt knows no package {', '.join(missing)} to download (is a Debian mirror configured?)"
        )
    return found


def _part(cache: Path, deb: _Deb, member: str, kind: str) -> Path:
    """One file of ``deb`` (``member`` a tar pattern), cached by the package's SHA-256; the
    package is downloaded, never installed."""
    part = cache / f"{kind}-{deb.sha256[:16]}"
    if part.is_file():
        return part
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{kind}-") as download:
        proc = subprocess.run(
            ["apt-get", "download", "-q", f"{deb.name}={deb.version}"],
            cwd=download,
            capture_output=True,
            text=True,
        )
        debs = list(Path(download).glob("*.deb"))
        if proc.returncode != 0 or len(debs) != 1:
            raise _AptMiss(f"apt-get download {deb.name}={deb.version} failed: {proc.stderr.strip()}")
        if hashlib.sha256(debs[0].read_bytes()).hexdigest() != deb.sha256:
            raise GuestBuildError(f"{debs[0].name} does not have the SHA-256 apt lists for it")
        data = _deb_member(debs[0], member)
        tmp = Path(download) / kind
        tmp.write_bytes(data)
        os.replace(tmp, part)
    for old in cache.glob(f"{kind}-*"):
        if old != part and old.is_file():
            old.unlink(missing_ok=True)
    return part


def _deb_member(deb: Path, pattern: str) -> bytes:
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for entry in tar:
                    if entry.isfile() and fnmatch.fnmatch(entry.name, pattern):
                        return tar.extractfile(entry).read()
        finally:
            proc.kill()  # the rest of the package is not needed
    raise GuestBuildError(f"{deb.name} holds no file {pattern}")


# -- the initramfs -----------------------------------------------------------------------------


def _initramfs(busybox: bytes) -> bytes:
    """A newc cpio archive: busybox, ``/init``, and ``/dev/console`` (the kernel opens it for
    init's output before anything could mount devtmpfs)."""
    out = io.BytesIO()
    entries = [
        ("bin", 0o040755, b"", 0, 0),
        ("dev", 0o040755, b"", 0, 0),
        ("dev/console", 0o020600, b"", 5, 1),
        ("proc", 0o040755, b"", 0, 0),
        ("sys", 0o040755, b"", 0, 0),
        ("bin/busybox", 0o100755, busybox, 0, 0),
        ("bin/sh", 0o120777, b"busybox", 0, 0),
        ("init", 0o100755, INIT.encode(), 0, 0),
        ("TRAILER!!!", 0, b"", 0, 0),
    ]
    for inode, (name, mode, data, rdev_major, rdev_minor) in enumerate(entries, start=1):
        name_bytes = name.encode() + b"\0"
        nlink = 2 if mode & 0o040000 else 1
        fields = [inode, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev_major, rdev_minor, len(name_bytes), 0]
        out.write(b"070701" + b"".join(b"%08X" % field for field in fields) + name_bytes)
        out.write(b"\0" * (-out.tell() % 4))
        out.write(data)
        out.write(b"\0" * (-out.tell() % 4))
    return out.getvalue()


# -- disks -------------------------------------------------------------------------------------


def _fat(path: Path, *, dirs: list[str], files: dict[str, Path | bytes], bios: bool) -> None:
    """A FAT16 file system in the file ``path``; ``-h``: the partition's start, which a boot
    sector reads from its BPB."""
    with open(path, "wb") as f:
        f.truncate(FS_SECTORS * SECTOR)
    _run(
        ["mkfs.vfat", "-F", "16", "-n", "HYPERSDK", "-i", VOLUME_ID, "-h", str(PART_START), str(path)],
        what="mkfs.vfat",
    )
    if bios:
        _run(["syslinux", "--install", str(path)], what="syslinux --install")
    for directory in dirs:
        _run(["mmd", "-i", str(path), f"::{directory}"], what="mmd")
    for target, source in files.items():
        if isinstance(source, bytes):
            staged = path.parent / Path(target).name
            staged.write_bytes(source)
            source = staged
        _run(["mcopy", "-i", str(path), str(source), f"::{target}"], what="mcopy")


def _disk(raw: Path, fs: Path, *, label: str, mbr_code: bytes | None = None) -> None:
    with open(raw, "wb") as f:
        f.truncate(DISK_BYTES)
    _run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(raw)],
        what="sfdisk",
        stdin=label.encode(),
    )
    with open(raw, "r+b") as disk, open(fs, "rb") as source:
        if mbr_code is not None:
            disk.write(mbr_code[:440])  # boot code only: the partition table follows it
        disk.seek(PART_START * SECTOR)
        shutil.copyfileobj(source, disk, 1 << 20)


def _bios_image(raw: Path, work: Path, vmlinuz: Path, initrd: Path, cmdline: str) -> None:
    config = (
        "SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT guest\n"
        f"LABEL guest\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND {cmdline}\n"
    )
    fs = work / "fs.img"
    _fat(
        fs,
        dirs=[],
        files={"/vmlinuz": vmlinuz, "/initrd.img": initrd, "/syslinux.cfg": config.encode()},
        bios=True,
    )
    label = f"label: dos\nlabel-id: 0x{VOLUME_ID}\nstart={PART_START}, size={FS_SECTORS}, type=e, bootable\n"
    _disk(raw, fs, label=label, mbr_code=SYSLINUX_MBR.read_bytes())


def _efi_image(raw: Path, work: Path, vmlinuz: Path, initrd: Path, cmdline: str) -> None:
    uki = work / "BOOTX64.EFI"
    _unified_kernel_image(uki, work, vmlinuz, initrd, cmdline)
    fs = work / "fs.img"
    _fat(fs, dirs=["/EFI", "/EFI/BOOT"], files={"/EFI/BOOT/BOOTX64.EFI": uki}, bios=False)
    label = (
        f"label: gpt\nlabel-id: {VOLUME_ID}-0000-4000-8000-000000000000\n"
        f'start={PART_START}, size={FS_SECTORS}, type={ESP_TYPE}, uuid={VOLUME_ID}-0000-4000-8000-000000000001, name="EFI System"\n'
    )
    _disk(raw, fs, label=label)


def _unified_kernel_image(out: Path, work: Path, vmlinuz: Path, initrd: Path, cmdline: str) -> None:
    """systemd-boot's stub with .osrel, .cmdline, .initrd and .linux sections, each placed
    page-aligned after the stub's own (the kernel last, as the stub expects)."""
    headers = _run(["objdump", "-h", str(EFI_STUB)], what="objdump -h")
    sections = re.findall(r"^\s*\d+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s", headers, re.MULTILINE)
    if not sections:
        raise GuestBuildError(f"objdump found no sections in {EFI_STUB}")
    end = max(int(size, 16) + int(vma, 16) for size, vma in sections)
    (work / "osrel").write_text(OS_RELEASE)
    (work / "cmdline").write_text(cmdline)
    command = ["objcopy"]
    for name, path in [
        (".osrel", work / "osrel"),
        (".cmdline", work / "cmdline"),
        (".initrd", initrd),
        (".linux", vmlinuz),
    ]:
        vma = -(-end // 4096) * 4096
        command += ["--add-section", f"{name}={path}", "--change-section-vma", f"{name}={vma:#x}"]
        end = vma + path.stat().st_size
    _run([*command, str(EFI_STUB), str(out)], what="objcopy (unified kernel image)")
