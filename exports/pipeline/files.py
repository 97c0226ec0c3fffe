"""Safe file operations for an export's output: paths opened beneath a directory descriptor
without following symlinks, atomic writes (``.part`` then rename), and the files' digests.

Every file an export writes goes through these (downloads write behind with ``WriteBehind``);
what a run created is recorded by ``exports.pipeline.output.OutputDir``.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from exports.pipeline.errors import ConversionError, OutputError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
HASH_CHUNK = 8 << 20
_ZEROS = memoryview(bytes(HASH_CHUNK))


def sha256_file(
    path: Path, *, dir_fd: int | None = None, progress: Callable[[int], None] | None = None
) -> str:
    """The file's SHA-256 (hex); ``progress(n)`` after each ``n`` bytes read."""
    digest = hashlib.sha256()
    fd = open_beneath(dir_fd, str(path), os.O_RDONLY) if dir_fd is not None else os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def output_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"disk full writing {path} (ENOSPC): partial files removed")
    if exc.errno == errno.EFBIG:
        return OutputError(f"file size limit reached writing {path} (EFBIG): partial files removed")
    return OutputError(f"cannot write {path}: {exc.strerror}")


def open_beneath(dir_fd: int | None, relative: str, flags: int, mode: int = 0o644) -> int:
    """Open ``relative`` under the directory ``dir_fd`` without following any symlink on the way.

    Raises OSError (ELOOP or ENOTDIR when a component is a symlink or not a directory).
    """
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise OSError(errno.EINVAL, f"not a path beneath the output directory: {relative}")
    current = dir_fd
    opened: list[int] = []
    try:
        for part in parts[:-1]:
            current = os.open(part, DIR_FLAGS, dir_fd=current)
            opened.append(current)
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=current)
    finally:
        for fd in opened:
            os.close(fd)


def open_directory(path: Path, *, create: bool = False, created: list[str] | None = None) -> int:
    """A descriptor of the absolute directory ``path``, opened component by component from ``/``
    without following symlinks; with ``create``, missing components are made (and appended,
    outermost first, to ``created``). Raises OSError."""
    if not path.is_absolute():
        raise OSError(errno.EINVAL, f"not an absolute path: {path}")
    current = os.open("/", DIR_FLAGS)
    try:
        walked = Path("/")
        for part in path.parts[1:]:
            walked = walked / part
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=current)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=current)
                if created is not None:
                    created.append(str(walked))
                child = os.open(part, DIR_FLAGS, dir_fd=current)
            os.close(current)
            current = child
        return current
    except NotADirectoryError:
        # O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR too: tell a symlink from a file.
        if stat.S_ISLNK(os.stat(walked.name, dir_fd=current, follow_symlinks=False).st_mode):
            os.close(current)
            raise OSError(errno.ELOOP, "a symlink", str(walked)) from None
        os.close(current)
        raise
    except BaseException:
        os.close(current)
        raise


def fd_path(fd: int, name: str = "") -> str:
    """``/proc/<this process>/fd/<fd>[/name]``: a path other programs (a converter and the
    tools it runs) can use while this process holds ``fd``; it leads to the directory opened,
    whatever its path has become since."""
    base = f"/proc/{os.getpid()}/fd/{fd}"
    return f"{base}/{name}" if name else base


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield ``<path>.part`` to write; on success fsync it and rename it to ``path``.

    On any failure the ``.part`` is removed, and an OSError becomes a one-line OutputError.
    """
    part = path.with_name(path.name + ".part")
    try:
        yield part
        with open(part, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise output_error(path, exc) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(path: Path, *, dir_fd: int) -> Iterator[IO[bytes]]:
    """Yield ``<name>.part`` opened for writing in the directory ``dir_fd`` (``path`` names the
    file in messages); on success fsync it and rename it to its name, on failure remove it."""
    name = path.name
    part = name + ".part"
    try:
        with os.fdopen(os.open(part, NEW_FILE_FLAGS, 0o644, dir_fd=dir_fd), "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        unlink_if_present(part, dir_fd)
        raise output_error(path, exc) from None
    except BaseException:
        unlink_if_present(part, dir_fd)
        raise


def write_atomically(path: Path, data: bytes, *, dir_fd: int | None = None) -> Path:
    """Write ``data`` to ``path`` through a ``.part`` and a rename; with ``dir_fd``, ``path``'s
    name is taken in that directory."""
    if dir_fd is not None:
        with atomic_file(path, dir_fd=dir_fd) as handle:
            handle.write(data)
        return path
    with atomic_path(path) as part:
        part.write_bytes(data)
    return path


def unlink_if_present(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def remove_entry(name: str, dir_fd: int) -> None:
    """Remove ``name`` (a file, a symlink, or a whole directory tree) in ``dir_fd``; never follows."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd, ignore_errors=True)
    else:
        unlink_if_present(name, dir_fd)


def entry_exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def sha256_sparse_file(
    path: Path, *, dir_fd: int | None = None, progress: Callable[[int], None] | None = None
) -> str:
    """SHA-256 of a file, its holes hashed from a zero buffer instead of read.

    A raw output of a thin disk is mostly holes (9 GiB of capacity, a few MiB of data): reading
    them would copy gigabytes of zero pages for nothing. The digest is the same as of a plain
    read. Where the filesystem cannot report holes (no SEEK_DATA), the file is simply read.
    With ``dir_fd``, ``path`` is taken in that directory, never through a symlink.
    ``progress(n)`` after each ``n`` bytes of the file hashed, holes included.
    """
    digest = hashlib.sha256()
    fd = open_beneath(dir_fd, str(path), os.O_RDONLY) if dir_fd is not None else os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        position = 0
        while position < size:
            try:
                data = os.lseek(fd, position, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole up to the end
                    data = size
                elif position == 0:
                    return sha256_file(path, dir_fd=dir_fd, progress=progress)
                else:
                    raise
            while position < data:  # the hole: zeros
                step = min(HASH_CHUNK, data - position)
                digest.update(_ZEROS[:step])
                position += step
                if progress is not None:
                    progress(step)
            if position >= size:
                break
            hole = os.lseek(fd, position, os.SEEK_HOLE)
            handle.seek(position)
            while position < hole:
                chunk = handle.read(min(HASH_CHUNK, hole - position))
                if not chunk:
                    raise ConversionError(f"{path.name} shrank while it was being hashed")
                digest.update(chunk)
                position += len(chunk)
                if progress is not None:
                    progress(len(chunk))
    return digest.hexdigest()


def _sync_file_range() -> Callable[[int, int, int, bool], None]:
    """Linux's sync_file_range(2), or a no-op where it is missing."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return lambda fd, offset, length, wait: None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    wait_before, write, wait_after = 1, 2, 4  # SYNC_FILE_RANGE_* flags

    def sync_range(fd: int, offset: int, length: int, wait: bool) -> None:
        function(fd, offset, length, (wait_before | write | wait_after) if wait else write)

    return sync_range


sync_range = _sync_file_range()


def drop_cached(fd: int, offset: int = 0, length: int = 0) -> None:
    """Drop the file's clean cached pages in [offset, offset+length) (length 0: to the end)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


class WriteBehind:
    """Keeps a file written front to back from piling up in the page cache.

    The final fsync is mandatory; on a disk of many GiB it would flush everything at the end,
    and every GiB written would take a GiB of fresh page-cache pages, pushing out the rest of
    the machine's cache. Instead, writeback of each ``window`` starts as soon as it is written;
    the window before it is waited for and then dropped from the cache (its pages are clean by
    then, and free again for the next windows). Dirty and cached pages of the file both stay
    within two windows, whatever its size, and the final fsync is short.
    """

    def __init__(self, fd: int, window: int = 64 << 20) -> None:
        self.fd = fd
        self.window = window
        self.started_to = 0  # writeback started up to here
        self.synced_to = 0  # and finished (and dropped) up to here

    def written(self, size: int) -> None:
        """The file now holds ``size`` bytes."""
        if size - self.started_to < self.window:
            return
        if self.started_to > self.synced_to:
            sync_range(self.fd, self.synced_to, self.started_to - self.synced_to, True)
            drop_cached(self.fd, self.synced_to, self.started_to - self.synced_to)
            self.synced_to = self.started_to
        sync_range(self.fd, self.started_to, size - self.started_to, False)
        self.started_to = size
