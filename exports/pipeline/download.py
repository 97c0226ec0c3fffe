"""Download one disk from an NFC URL in a single pass.

Bytes stream into ``<file>.part`` while the SHA-256 of the same bytes is computed, then the
file is fsynced and renamed: a file without ``.part`` is always complete and its digest known.
Network reads run in the calling thread, hashing and writing in two more (hashlib and
os.write release the GIL on large buffers), so the three overlap; the TLS connection is
reused for the whole disk and read in large pieces (``BulkTLSSocket``).

The file is written with O_DIRECT where the filesystem takes it: the bytes go from the buffers
to the disk without a copy into the page cache, which is what most of the system time of a
buffered download was (and a GiB of page cache pushed out per GiB downloaded). Where it does
not (tmpfs, some network filesystems, an alignment the device refuses), the file is written
through the page cache behind a ``WriteBehind`` window. Either way it is fsynced before rename.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import http.client
import mmap
import os
import queue
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from exports.pipeline.connect import VCenterTarget
from exports.pipeline.devices import DiskDevice
from exports.pipeline.errors import DownloadError, ExportCancelled
from exports.pipeline.files import WriteBehind, drop_cached
from exports.pipeline.lease import DiskSource
from exports.pipeline.progress import CancelToken, TransferMeter
from exports.pipeline.tls_socket import BulkTLSConnection

CHUNK_SIZE = 4 << 20
BUFFERS = 4  # per disk: CHUNK_SIZE * BUFFERS bounds memory whatever the disk size
# O_DIRECT wants buffer addresses, file offsets and lengths in multiples of the device's logical
# block (512 or 4096): buffers are page-aligned mmaps and every write but the last is CHUNK_SIZE.
DIRECT_ALIGNMENT = 4096
READ_TIMEOUT = 120.0


@dataclass(frozen=True)
class DownloadedDisk:
    source_key: str
    path: Path
    size: int
    sha256: str
    capacity_bytes: int
    # The VirtualDisk this file is (None for the NVRAM file).
    device: DiskDevice | None = None


def _thumbprint(der: bytes, algorithm: str) -> str:
    digest = hashlib.new(algorithm, der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _open(source: DiskSource, target: VCenterTarget) -> tuple[http.client.HTTPConnection, str]:
    """Connect to the NFC host; trust it by the thumbprint vCenter vouched for in the lease."""
    url = urlsplit(source.url)
    path = url.path + (f"?{url.query}" if url.query else "")
    if url.scheme == "http":
        return http.client.HTTPConnection(url.hostname, url.port, timeout=READ_TIMEOUT), path
    pinned = bool(source.ssl_thumbprint) and not target.insecure
    if pinned or target.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = target.ssl_context()
    conn = BulkTLSConnection(url.hostname, url.port, timeout=READ_TIMEOUT, context=context)
    try:
        conn.connect()
    except (OSError, ssl.SSLError) as exc:
        conn.close()
        raise DownloadError(f"cannot connect to {url.netloc}: {exc}") from None
    if pinned:
        der = conn.sock.getpeercert(binary_form=True)
        expected = source.ssl_thumbprint.upper()
        algorithm = "sha1" if len(expected.replace(":", "")) == 40 else "sha256"
        if _thumbprint(der, algorithm) != expected:
            conn.close()
            raise DownloadError(
                f"TLS thumbprint of {url.netloc} does not match the one vCenter gave for the lease",
                retryable=False,
            )
    return conn, path


def probe_size(source: DiskSource, target: VCenterTarget, cookie: str) -> int | None:
    """The file's size from a HEAD request, or None when the host does not say."""
    if source.file_size:
        return source.file_size
    try:
        conn, path = _open(source, target)
    except DownloadError:
        return None
    try:
        conn.request("HEAD", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        response.read()
        # Not response.length: http.client sets it to 0 for any HEAD response.
        length = response.getheader("Content-Length")
        return int(length) if response.status == 200 and length and length.isdigit() else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _fill(response: http.client.HTTPResponse, buffer: mmap.mmap) -> int:
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        got = response.readinto(view[filled:])
        if not got:
            break
        filled += got
    return filled


class _DiskSink:
    """Hashes and writes the chunks the reader hands over, each in a thread of its own.

    Reader → hasher → writer → back to the free pool: with a few buffers in flight all
    three stages run at once. The first error stops the work but not the flow of buffers,
    so the reader never waits forever.
    """

    def __init__(self, fd: int, direct: bool) -> None:
        self.fd = fd
        self.direct = direct
        self.digest = hashlib.sha256()
        self.size = 0
        self.write_behind = WriteBehind(fd)
        self.error: BaseException | None = None
        self.free: queue.Queue[mmap.mmap] = queue.Queue()
        self._to_hash: queue.Queue[tuple[mmap.mmap, int] | None] = queue.Queue()
        self._to_write: queue.Queue[tuple[mmap.mmap, int] | None] = queue.Queue()
        for _ in range(BUFFERS):
            self.free.put(mmap.mmap(-1, CHUNK_SIZE))  # page-aligned, as O_DIRECT needs
        self._threads = [
            threading.Thread(target=self._hash, name="disk-hash", daemon=True),
            threading.Thread(target=self._write, name="disk-write", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _hash(self) -> None:
        while (item := self._to_hash.get()) is not None:
            if self.error is None:
                self.digest.update(memoryview(item[0])[: item[1]])
            self._to_write.put(item)
        self._to_write.put(None)

    def _write(self) -> None:
        while (item := self._to_write.get()) is not None:
            buffer, length = item
            if self.error is None:
                try:
                    self._write_all(memoryview(buffer)[:length])
                    self.size += length
                    if not self.direct:  # O_DIRECT leaves nothing in the page cache to write behind
                        self.write_behind.written(self.size)
                except BaseException as exc:  # noqa: BLE001 - handed to the reader thread
                    self.error = exc
            self.free.put(buffer)

    def _write_all(self, view: memoryview) -> None:
        if self.direct and len(view) % DIRECT_ALIGNMENT:  # the file's tail
            self._stop_direct()
        while view:
            try:
                written = os.write(self.fd, view)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not self.direct:
                    raise
                self._stop_direct()  # an alignment this filesystem refuses, or a short write before
                continue
            view = view[written:]

    def _stop_direct(self) -> None:
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        self.direct = False

    def take_buffer(self) -> mmap.mmap:
        while True:
            if self.error is not None:
                raise self.error
            try:
                return self.free.get(timeout=0.5)
            except queue.Empty:
                continue

    def submit(self, buffer: mmap.mmap, length: int) -> None:
        self._to_hash.put((buffer, length))

    def finish_quietly(self) -> None:
        """Stop the threads after a failure elsewhere; their own error no longer matters."""
        self.error = self.error or RuntimeError("download stopped")
        self._to_hash.put(None)
        for thread in self._threads:
            thread.join()

    def finish(self) -> None:
        """Wait for every chunk to be hashed and written; raise the first error."""
        self._to_hash.put(None)
        for thread in self._threads:
            thread.join()
        if self.error is not None:
            raise self.error


def download_disk(
    source: DiskSource,
    dest: Path,
    *,
    target: VCenterTarget,
    cookie: str,
    meter: TransferMeter,
    cancel: CancelToken,
    dir_fd: int | None = None,
) -> DownloadedDisk:
    """Download to ``dest``; with ``dir_fd`` (the output directory, opened once) the file is
    created relative to it and never through a symlink, whatever happens to ``dest``'s path."""
    part = dest.with_name(dest.name + ".part")
    # Relative to the directory's descriptor when given, else the path itself.
    part_name, dest_name = (part.name, dest.name) if dir_fd is not None else (part, dest)
    conn, path = _open(source, target)
    # A blocked read cannot poll the token: shutting the socket down wakes it at once.
    unregister = cancel.on_cancel(lambda: _shutdown(conn))
    meter.restart(dest.name)
    try:
        cancel.raise_if_cancelled()
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        if response.status != 200:
            raise DownloadError(f"{dest.name}: NFC server answered {response.status} {response.reason}")
        expected = response.length  # http.client counts this down as it reads
        if expected is not None:
            meter.expect(dest.name, expected)
        digest, size = _stream_to(part_name, response, dest.name, meter, cancel, dir_fd)
        if expected is not None and size != expected:
            raise DownloadError(f"{dest.name}: transfer ended after {size} of {expected} bytes")
        os.replace(part_name, dest_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return DownloadedDisk(source.key, dest, size, digest, source.capacity_bytes, source.device)
    except ExportCancelled:
        raise
    except OSError as exc:
        if cancel.cancelled:
            raise ExportCancelled() from None
        if exc.errno == errno.ENOSPC:
            raise DownloadError(
                f"disk full writing {dest} (ENOSPC): partial files removed", retryable=False
            ) from None
        if exc.errno == errno.EFBIG:  # RLIMIT_FSIZE or the filesystem's file size limit
            raise DownloadError(
                f"file size limit reached writing {dest} (EFBIG): partial files removed", retryable=False
            ) from None
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EDQUOT):
            raise DownloadError(f"cannot write {dest}: {exc.strerror}", retryable=False) from None
        raise DownloadError(f"{dest.name}: transfer failed: {exc.strerror or exc}") from None
    except (http.client.HTTPException, ssl.SSLError) as exc:
        if cancel.cancelled:
            raise ExportCancelled() from None
        raise DownloadError(f"{dest.name}: transfer failed: {exc.__class__.__name__} {exc}") from None
    finally:
        unregister()
        conn.close()
        try:
            os.unlink(part_name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


def _stream_to(
    part: Path | str,
    response: http.client.HTTPResponse,
    name: str,
    meter: TransferMeter,
    cancel: CancelToken,
    dir_fd: int | None = None,
) -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd, direct = os.open(part, flags | os.O_DIRECT, 0o644, dir_fd=dir_fd), True
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: this filesystem does not do O_DIRECT
            raise
        fd, direct = os.open(part, flags, 0o644, dir_fd=dir_fd), False
    sink = _DiskSink(fd, direct)
    finished = False
    try:
        while True:
            cancel.raise_if_cancelled()
            buffer = sink.take_buffer()
            length = _fill(response, buffer)
            if not length:
                sink.free.put(buffer)
                break
            sink.submit(buffer, length)
            meter.add(name, length)
        finished = True
        sink.finish()
        os.fsync(fd)
        drop_cached(fd)  # the rest of the file, now on disk too
        return sink.digest.hexdigest(), sink.size
    finally:
        if not finished:
            sink.finish_quietly()
        os.close(fd)


def _shutdown(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            # Only the TCP connection (a plain socket or BulkTLSSocket's): safe from any thread.
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
