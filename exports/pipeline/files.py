"""Output-directory discipline: atomic writes and removing what a failed run left behind."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from exports.pipeline.errors import OutputError


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def output_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"disk full writing {path} (ENOSPC): partial files removed")
    if exc.errno == errno.EFBIG:
        return OutputError(f"file size limit reached writing {path} (EFBIG): partial files removed")
    return OutputError(f"cannot write {path}: {exc.strerror}")


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


def write_atomically(path: Path, data: bytes) -> Path:
    with atomic_path(path) as part:
        part.write_bytes(data)
    return path


class OutputDir:
    """The export's output directory; remembers what this run created so a failure can undo it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._created_dir = False
        self._created: list[Path] = []

    def prepare(self, *, completed_marker_names: list[str], overwrite: bool) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"output {self.path} exists and is not a directory")
        existing = [self.path / name for name in completed_marker_names if (self.path / name).exists()]
        if existing and not overwrite:
            raise OutputError(
                f"{self.path} already holds a completed export ({existing[0].name}): "
                "pass -overwrite to replace it"
            )
        if not self.path.exists():
            try:
                self.path.mkdir(parents=True)
            except OSError as exc:
                raise OutputError(f"cannot create output directory {self.path}: {exc.strerror}") from None
            self._created_dir = True
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise OutputError(f"output directory {self.path} is not writable")
        for stale in existing:
            stale.unlink()  # an overwritten export is not complete until the new one is

    def track(self, path: Path) -> Path:
        self._created.append(path)
        return path

    def discard(self) -> None:
        """Remove this run's files and ``.part`` leftovers (and the directory if we made it)."""
        for path in self._created:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".part").unlink(missing_ok=True)
        for leftover in self.path.glob("*.part") if self.path.is_dir() else []:
            leftover.unlink(missing_ok=True)
        if self._created_dir:
            shutil.rmtree(self.path, ignore_errors=True)
