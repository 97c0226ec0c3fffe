"""Pack an export into an OVA: a plain tar with the ``.ovf`` first, then the ``.mf``, then the files.

Header format: GNU tar's (``tar --format=gnu``, Python's ``GNU_FORMAT``), as VMware's own
``ova-compose`` (open-vmdk) writes OVAs. A member under 8 GiB with a name of at most 100 bytes
gets a header that differs from POSIX ustar only in its magic; a bigger member stores its size
in base-256 in the same 12-byte field, a longer name goes in a ``././@LongLink`` record before
the header. GNU tar, Go's ``archive/tar`` (govc ``import.ova``), Python's ``tarfile`` and
virt-v2v (GNU tar) read both extensions; VMware ships base-256 sizes for vSphere, and reports
that vSphere does not read the PAX ``size`` record, which is why PAX is not used.

``-compress`` is the OVF standard's per-file compression, as ovftool writes it: each disk is
gzipped inside the (still plain) tar, its ``File`` in the descriptor gets
``ovf:compression="gzip"`` and ``ovf:size`` of the compressed bytes, and the ``.mf`` holds the
SHA-256 of the compressed bytes, as stored in the OVA (DSP0243: "When compression is used, the
ovf:size attribute shall specify the size of the actual compressed file"; the manifest digests
the package's files as they are).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import html
import os
import re
import tarfile
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from exports.pipeline.download import DownloadedDisk
from exports.pipeline.errors import ExportError, OutputError
from exports.pipeline.files import atomic_file, open_beneath
from exports.pipeline.formats import OVA_GZIP_LEVEL
from exports.pipeline.progress import CancelToken, PhaseMeter

TAR_FORMAT = tarfile.GNU_FORMAT
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
# The size probed before a download: any size a disk can have (base-256 holds up to 2**95).
ANY_SIZE = 1 << 62
GZIP_LEVEL = OVA_GZIP_LEVEL
CHUNK = 4 << 20
COPY_PIECE = 64 << 20  # copy_file_range's unit: a cancel waits for one piece, progress moves by one
_ZEROS = bytes(RECORD)


class PackageError(ExportError):
    """A file cannot be stored in an OVA (its name, typically)."""


def member_header(name: str, size: int, mtime: int = 0) -> bytes:
    """The tar header block(s) of a regular file ``name`` of ``size`` bytes, as stored in the OVA."""
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise PackageError(f"cannot store {name!r} in an OVA: a member is one plain file name")
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    try:
        return info.tobuf(TAR_FORMAT, "utf-8", "strict")
    except (ValueError, UnicodeError) as exc:
        raise PackageError(f"cannot store {name!r} in an OVA: {exc}") from None


def check_member_names(names: list[str]) -> None:
    """Refuse, before anything is downloaded, a name no OVA header could hold (PackageError)."""
    for name in names:
        member_header(name, ANY_SIZE)


def write_ova(
    ova_path: Path,
    members: list[Path],
    cancel: CancelToken | None = None,
    *,
    dir_fd: int | None = None,
    meter: PhaseMeter | None = None,
) -> Path:
    """Write ``members`` (in that order, under their own names) as the tar ``ova_path``, atomically.

    With ``dir_fd``, the OVA is written in that directory and ``members`` are paths relative to
    it, none of them followed through a symlink. Holes in a member stay holes in the OVA, and
    data moves with copy_file_range(2) where the kernel offers it. Raises PackageError for a
    name no header can hold (before writing anything), OutputError when the OVA cannot be
    written, ExportCancelled (leaving no ``.part``) on cancel.
    """
    cancel = cancel or CancelToken()
    sources: list[int] = []
    own_dir = dir_fd is None
    if own_dir:
        dir_fd = os.open(ova_path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for member in members:
            if own_dir:
                sources.append(os.open(member, os.O_RDONLY | os.O_CLOEXEC))
            else:
                sources.append(open_beneath(dir_fd, str(member), os.O_RDONLY))
        stats = [os.fstat(fd) for fd in sources]
        headers = [
            member_header(member.name, stat.st_size, int(stat.st_mtime))
            for member, stat in zip(members, stats, strict=True)
        ]
        if meter is not None:
            meter.expect(ova_path.name, sum(stat.st_size for stat in stats))
        moved = (lambda n: meter.add(ova_path.name, n)) if meter is not None else _ignore
        with atomic_file(ova_path, dir_fd=dir_fd) as part:
            fd = part.fileno()
            offset = 0
            for member, source, stat, header in zip(members, sources, stats, headers, strict=True):
                offset += _pwrite_all(fd, header, offset)
                copied = _copy_sparse(source, fd, offset, stat.st_size, cancel, moved)
                if copied != stat.st_size:
                    raise OutputError(f"{member.name} changed size while it was packed into {ova_path.name}")
                offset += copied
                offset += _pwrite_all(fd, _ZEROS[: -copied % BLOCK], offset)
            # The end-of-archive marker (two zero blocks), padded to a whole record as tar does:
            # extending the file writes those zeros.
            end = offset + 2 * BLOCK
            os.ftruncate(fd, end + -end % RECORD)
    finally:
        for source in sources:
            os.close(source)
        if own_dir:
            os.close(dir_fd)
    return ova_path


def _ignore(nbytes: int) -> None:
    pass


def _pwrite_all(fd: int, data: bytes, offset: int) -> int:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    return len(data)


def _copy_sparse(
    src: int, dst: int, dst_offset: int, length: int, cancel: CancelToken, moved: Callable[[int], None]
) -> int:
    """Copy ``length`` bytes of ``src`` to ``dst`` at ``dst_offset``, skipping the source's holes;
    ``moved(n)`` after each piece copied or hole skipped."""
    position = 0
    while position < length:
        try:
            data = os.lseek(src, position, os.SEEK_DATA)
            hole = os.lseek(src, data, os.SEEK_HOLE)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole up to the end
                break
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            data, hole = position, length  # no hole detection on this filesystem
        hole = min(hole, length)
        if data >= length:
            break
        moved(data - position)
        _copy_range(src, dst, data, dst_offset + data, hole - data, cancel, moved)
        position = hole
    moved(max(length - position, 0))
    # The file's real end, even if it shrank: the caller compares it with the header's size.
    return min(os.fstat(src).st_size, length)


def _copy_range(
    src: int,
    dst: int,
    src_offset: int,
    dst_offset: int,
    count: int,
    cancel: CancelToken,
    moved: Callable[[int], None],
) -> None:
    while count > 0:
        cancel.raise_if_cancelled()  # between pieces of at most COPY_PIECE bytes
        try:
            copied = os.copy_file_range(src, dst, min(count, COPY_PIECE), src_offset, dst_offset)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            copied = _copy_by_hand(src, dst, src_offset, dst_offset, count)
        if copied == 0:
            return  # the source ended early: the caller sees the short size
        moved(copied)
        src_offset, dst_offset, count = src_offset + copied, dst_offset + copied, count - copied


def _copy_by_hand(src: int, dst: int, src_offset: int, dst_offset: int, count: int) -> int:
    chunk = os.pread(src, min(count, CHUNK), src_offset)
    return _pwrite_all(dst, chunk, dst_offset) if chunk else 0


def gzip_file(
    source: Path,
    dest: Path,
    level: int = GZIP_LEVEL,
    cancel: CancelToken | None = None,
    *,
    source_dir_fd: int | None = None,
    dest_dir_fd: int | None = None,
    meter: PhaseMeter | None = None,
) -> tuple[int, str]:
    """Gzip ``source`` into ``dest`` (atomically); return (size, SHA-256) of the compressed bytes.

    One pass: the compressed bytes are hashed as they are written. The gzip header names no
    file and no time (wbits 31), so the same disk always compresses to the same bytes. With
    ``source_dir_fd``/``dest_dir_fd`` the paths are taken in those directories, never through
    a symlink. ``meter`` counts the source's bytes read, under its name.
    """
    cancel = cancel or CancelToken()
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    digest = hashlib.sha256()
    size = 0
    if source_dir_fd is None:
        source_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    else:
        source_fd = open_beneath(source_dir_fd, str(source), os.O_RDONLY)
    own_dir = dest_dir_fd is None
    if own_dir:
        dest_dir_fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with os.fdopen(source_fd, "rb") as raw, atomic_file(dest, dir_fd=dest_dir_fd) as out:
            while True:
                cancel.raise_if_cancelled()
                chunk = raw.read(CHUNK)
                if meter is not None:
                    meter.add(source.name, len(chunk))
                packed = compressor.compress(chunk) if chunk else compressor.flush()
                digest.update(packed)
                out.write(packed)
                size += len(packed)
                if not chunk:
                    break
    finally:
        if own_dir:
            os.close(dest_dir_fd)
    return size, digest.hexdigest()


def gzip_disks(
    disks: list[DownloadedDisk],
    staging: Path,
    cancel: CancelToken | None = None,
    *,
    dir_fd: int | None = None,
    staging_fd: int | None = None,
    level: int = GZIP_LEVEL,
    meter: PhaseMeter | None = None,
) -> list[DownloadedDisk]:
    """Each disk gzipped (zlib ``level``, 1-9) into ``staging`` under the same name; size and
    SHA-256 of the gzip.

    With ``dir_fd`` (the disks' directory) and ``staging_fd`` (``staging`` opened), the files
    are opened beneath those descriptors."""

    def pack(disk: DownloadedDisk) -> DownloadedDisk:
        dest = staging / disk.path.name
        source = Path(disk.path.name) if dir_fd is not None else disk.path
        size, sha256 = gzip_file(
            source, dest, level, cancel=cancel, source_dir_fd=dir_fd, dest_dir_fd=staging_fd, meter=meter
        )
        return dataclasses.replace(disk, path=dest, size=size, sha256=sha256)

    # zlib releases the GIL: a few disks compress at once.
    with ThreadPoolExecutor(max_workers=max(1, min(len(disks), 4)), thread_name_prefix="gzip") as pool:
        return list(pool.map(pack, disks))


_FILE_TAG = re.compile(r"<(?:[\w.-]+:)?File\b[^>]*>")
_ATTRIBUTE = re.compile(r"""\s+([\w.-]+:)?(href|size|compression)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def mark_gzip_references(descriptor: str, compressed_sizes: dict[str, int]) -> str:
    """The descriptor with ``ovf:compression="gzip"`` and the compressed ``ovf:size`` on the
    ``File`` of each href in ``compressed_sizes``; the rest of the text is left byte for byte.

    Raises PackageError when a compressed file has no ``File`` element.
    """
    found: set[str] = set()

    def rewrite(match: re.Match[str]) -> str:
        tag = match.group(0)
        attributes = {m.group(2): m for m in _ATTRIBUTE.finditer(tag)}
        href = attributes.get("href")
        if href is None:
            return tag
        name = html.unescape(href.group(3) if href.group(3) is not None else href.group(4))
        if name not in compressed_sizes:
            return tag
        found.add(name)
        prefix = href.group(1) or ""
        for existing in ("size", "compression"):
            if existing in attributes:
                tag = tag.replace(attributes[existing].group(0), "", 1)
        end = len(tag) - (2 if tag.endswith("/>") else 1)
        added = f' {prefix}size="{compressed_sizes[name]}" {prefix}compression="gzip"'
        return tag[:end].rstrip() + added + tag[end:]

    marked = _FILE_TAG.sub(rewrite, descriptor)
    missing = sorted(set(compressed_sizes) - found)
    if missing:
        raise PackageError(f"the OVF descriptor has no File for {missing[0]}: cannot mark it compressed")
    try:
        ET.fromstring(marked.encode())
    except ET.ParseError as exc:
        raise PackageError(f"the OVF descriptor is not valid XML after marking compression: {exc}") from None
    return marked
