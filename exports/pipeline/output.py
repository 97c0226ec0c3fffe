"""The run's output directory and its record: what a run created there, so that exactly that
can be undone.

A run opens its output directory once, component by component without following symlinks,
and creates every file relative to that descriptor: a directory swapped for a symlink
mid-run cannot redirect the export. What the run creates, and what of a previous export it
moves aside (``-overwrite``), is recorded in ``<output>/.hypersdk-run-<run id>/record.json``;
failure, cancel or a dead worker's reaper (``discard_run``) undo exactly that, never a
re-derived pattern. Nothing here knows the database: a caller passes a directory and a run id.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from exports.pipeline.errors import CompletedExportHere, OutputError
from exports.pipeline.files import (
    DIR_FLAGS,
    NEW_FILE_FLAGS,
    entry_exists,
    fd_path,
    open_directory,
    output_error,
    remove_entry,
    unlink_if_present,
)

RUN_DIR_PREFIX = ".hypersdk-run-"
RECORD_NAME = "record.json"
# A record names the files of one export: thousands of names fit many times over.
RECORD_MAX_BYTES = 16 << 20
# Inside the run directory: the previous export's files this run replaces, until it succeeds.
PREVIOUS_DIR = "previous"


class OutputDir:
    """The export's output directory, opened once by descriptor, and the record of what this
    run created in it (and which files of a previous export it moved aside to replace them).

    ``commit`` makes the run's files the export; ``discard`` removes exactly what the run
    created, puts the previous export back, and removes the directories the run made if they
    are empty: never a file or directory the run did not make.
    """

    def __init__(self, path: Path, run_id: str | None = None) -> None:
        self.path = path
        self.run_id = run_id or secrets.token_hex(6)
        self.fd: int | None = None
        self.run_fd: int | None = None
        self.created_dirs: list[str] = []  # absolute paths this run made, outermost first
        self.created: list[str] = []  # names in the output directory, in the order made
        self.stashed: list[str] = []  # names of a previous export moved into the run directory
        self._owns_run_dir = False

    @property
    def run_dir_name(self) -> str:
        return f"{RUN_DIR_PREFIX}{self.run_id}"

    @property
    def run_path(self) -> Path:
        return self.path / self.run_dir_name

    def prepare(
        self, *, completed_marker_names: list[str], overwrite: bool, companion_names: Sequence[str] = ()
    ) -> None:
        """Open (making it if needed) the directory; refuse a completed export unless ``overwrite``,
        else move its markers (and its ``companion_names``, files that describe it) aside so it
        no longer looks complete until the new one is; they come back if this run fails."""
        try:
            self.fd = open_directory(self.path, create=True, created=self.created_dirs)
        except OSError as exc:
            self.fd = None
            self._remove_created_dirs()
            if exc.errno == errno.ELOOP:
                raise OutputError(
                    f"output {self.path}: {exc.filename} is a symlink: refused (give the real path)"
                ) from None
            raise OutputError(f"cannot create output directory {self.path}: {exc.strerror}") from None
        try:
            existing = self._completed(completed_marker_names, overwrite)
            if not os.access(".", os.W_OK | os.X_OK, dir_fd=self.fd):
                raise OutputError(f"output directory {self.path} is not writable")
            try:
                os.mkdir(self.run_dir_name, 0o700, dir_fd=self.fd)
            except FileExistsError:
                self._close()  # not ours to undo: the run of that id keeps its record
                raise OutputError(f"{self.run_path} exists: run {self.run_id} already started here") from None
            self._owns_run_dir = True
            self.run_fd = os.open(self.run_dir_name, DIR_FLAGS, dir_fd=self.fd)
            # Held until this run ends (the kernel drops it if the process dies): how another
            # run, of this daemon, another worker or a direct hyperexport, knows this one is live.
            fcntl.flock(self.run_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._refuse_live_runs()
            # Again, now that this run is live: another run may have undone a dead one meanwhile.
            existing = self._completed(completed_marker_names, overwrite)
            self._save()
            if existing:
                for name in [*existing, *companion_names]:
                    if entry_exists(name, self.fd):
                        self._stash(name)
        except OSError as exc:
            self.discard()
            raise output_error(self.path, exc) from None
        except BaseException:
            self.discard()
            raise

    def _completed(self, marker_names: list[str], overwrite: bool) -> list[str]:
        """The completed export's markers here, once dead runs are undone; OutputError if there
        are some and this run may not replace them."""
        self._recover_dead_runs()
        existing = [name for name in marker_names if entry_exists(name, self.fd)]
        if existing and not overwrite:
            raise CompletedExportHere(self.path, existing[0])
        return existing

    def _recover_dead_runs(self) -> None:
        """Undo the runs in this directory whose process died (a direct hyperexport killed
        outright has no reaper): their partial files go and a previous export they set aside
        comes back. discard_run leaves a run alone while its process holds the lock."""
        for name in os.listdir(self.fd):
            if name.startswith(RUN_DIR_PREFIX) and name != self.run_dir_name:
                # The directory is this run's now: the dead run's made-directories stay.
                discard_run(self.path, name.removeprefix(RUN_DIR_PREFIX), keep_dirs=True)

    def _refuse_live_runs(self) -> None:
        """OutputError when a live run (its record directory locked) writes to this directory,
        inside it, or around it: one directory, one export at a time, whoever started it."""
        candidates: list[Path] = []
        for walked, dirs, _files, _fd in os.fwalk(".", dir_fd=self.fd, follow_symlinks=False):
            candidates += [self.path / walked / d for d in dirs if d.startswith(RUN_DIR_PREFIX)]
            dirs[:] = [d for d in dirs if not d.startswith(RUN_DIR_PREFIX)]
        for parent in self.path.parents:
            try:
                candidates += [parent / n for n in os.listdir(parent) if n.startswith(RUN_DIR_PREFIX)]
            except OSError:
                continue
        for candidate in candidates:
            if candidate.name == self.run_dir_name and candidate.parent == self.path:
                continue
            try:
                fd = os.open(candidate, DIR_FLAGS)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                run = candidate.name.removeprefix(RUN_DIR_PREFIX)
                raise OutputError(
                    f"{self.path} is in use by another export (run {run} writing to {candidate.parent}): "
                    "wait for it to end, or choose another directory"
                ) from None
            finally:
                os.close(fd)

    def track(self, path: Path | str) -> Path:
        """Record that this run creates ``path`` (a name in the output directory) before it does;
        a previous export's file of that name is moved aside first. Returns the full path."""
        name = Path(path).name
        if name not in self.created:
            if self.fd is not None and name not in self.stashed and entry_exists(name, self.fd):
                self._stash(name)
            self.created.append(name)
            self._save()
        return self.path / name

    def make_dir(self, name: str) -> int:
        """Create (tracked) and open the subdirectory ``name``; the caller closes the descriptor."""
        self.track(name)
        try:
            os.mkdir(name, 0o755, dir_fd=self.fd)
        except FileExistsError:
            pass
        return os.open(name, DIR_FLAGS, dir_fd=self.fd)

    def proc_path(self, name: str = "") -> str:
        """A path to ``name`` in this directory through its descriptor (see ``fd_path``)."""
        return fd_path(self.fd, name)

    def ensure_in_place(self) -> None:
        """Refuse to go on when the directory's path no longer leads to the directory opened."""
        try:
            now = os.stat(self.path)
        except OSError:
            now = None
        opened = os.fstat(self.fd)
        if now is None or (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            raise OutputError(f"output directory {self.path} was moved or replaced during the export")

    def _stash(self, name: str) -> None:
        if PREVIOUS_DIR not in os.listdir(self.run_fd):
            os.mkdir(PREVIOUS_DIR, 0o700, dir_fd=self.run_fd)
        previous = os.open(PREVIOUS_DIR, DIR_FLAGS, dir_fd=self.run_fd)
        try:
            self.stashed.append(name)
            self._save()
            os.replace(name, name, src_dir_fd=self.fd, dst_dir_fd=previous)
        finally:
            os.close(previous)

    def _save(self) -> None:
        if self.run_fd is None:
            return
        record = {
            "run_id": self.run_id,
            "output": str(self.path),
            "created_dirs": self.created_dirs,
            "created": self.created,
            "stashed": self.stashed,
        }
        # No fsync: the record outlives a dead process through the page cache, which is its use.
        with os.fdopen(os.open(RECORD_NAME + ".part", NEW_FILE_FLAGS, 0o600, dir_fd=self.run_fd), "w") as f:
            json.dump(record, f)
        os.replace(RECORD_NAME + ".part", RECORD_NAME, src_dir_fd=self.run_fd, dst_dir_fd=self.run_fd)

    def commit(self) -> list[str]:
        """The run succeeded: its files are the export; drop the record and the replaced files.

        Returns the names this run created that now make up the export."""
        artifacts = []
        if self.fd is not None:
            artifacts = [name for name in self.created if entry_exists(name, self.fd)]
            shutil.rmtree(self.run_dir_name, dir_fd=self.fd, ignore_errors=True)
        self._close()
        return artifacts

    def discard(self) -> None:
        """Undo the run: remove what it created, restore what it moved aside, remove the
        directories it made if nothing else lives in them."""
        if self.fd is not None:
            for name in reversed(self.created):
                remove_entry(name, self.fd)
                unlink_if_present(name + ".part", self.fd)
            if self.stashed and self.run_fd is not None:
                try:
                    previous = os.open(PREVIOUS_DIR, DIR_FLAGS, dir_fd=self.run_fd)
                except FileNotFoundError:
                    previous = None
                if previous is not None:
                    for name in self.stashed:
                        try:
                            os.replace(name, name, src_dir_fd=previous, dst_dir_fd=self.fd)
                        except FileNotFoundError:
                            pass
                    os.close(previous)
            if self._owns_run_dir:
                shutil.rmtree(self.run_dir_name, dir_fd=self.fd, ignore_errors=True)
        self._close()
        self._remove_created_dirs()

    def _remove_created_dirs(self) -> None:
        for made in reversed(self.created_dirs):
            path = Path(made)
            try:
                parent = open_directory(path.parent)
            except OSError:
                return  # the way there changed: leave an empty directory rather than guess
            try:
                os.rmdir(path.name, dir_fd=parent)
            except OSError:
                return  # not empty (someone else's files live there) or gone: keep the parents
            finally:
                os.close(parent)
        self.created_dirs = []

    def _close(self) -> None:
        for fd in (self.run_fd, self.fd):
            if fd is not None:
                os.close(fd)
        self.run_fd = self.fd = None

    def __del__(self) -> None:
        self._close()


def discard_run(output: Path, run_id: str, *, keep_dirs: bool = False) -> bool:
    """Undo what run ``run_id`` recorded in ``output`` (its process died); with ``keep_dirs``,
    the directories it made stay (another run holds them now). False, touching nothing, if it
    left no readable record of its own (a run still starting writes its record once it holds
    the lock; a record another user planted is not ours) or if a process holds its lock (it is
    alive)."""
    output_dir = OutputDir(output, run_id)
    try:
        output_dir.fd = open_directory(output)
    except OSError:
        return False
    try:
        output_dir.run_fd = os.open(output_dir.run_dir_name, DIR_FLAGS, dir_fd=output_dir.fd)
        if os.fstat(output_dir.run_fd).st_uid != os.geteuid():
            raise ValueError("another user's directory")  # runs make theirs 0700, as this user
        fcntl.flock(output_dir.run_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: alive
        record = _read_record(output_dir.run_fd)
        if record.get("run_id") != run_id:
            raise ValueError("another run's record")
    except (OSError, ValueError):
        output_dir._close()
        return False
    # Only the output directory and its parents can have been made for it.
    output_dir._owns_run_dir = True
    output_dir.created_dirs = [
        str(made)
        for made in map(Path, _list(record, "created_dirs"))
        if not keep_dirs and made.is_absolute() and (made == output or output.is_relative_to(made))
    ]
    output_dir.created = [_plain_name(n) for n in _list(record, "created") if _plain_name(n)]
    output_dir.stashed = [_plain_name(n) for n in _list(record, "stashed") if _plain_name(n)]
    output_dir.discard()
    return True


def _read_record(run_fd: int) -> dict[str, Any]:
    """The run's record: a regular file (never a FIFO or device planted to hang the reader),
    at most RECORD_MAX_BYTES of a JSON object; ValueError otherwise."""
    fd = os.open(RECORD_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=run_fd)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size > RECORD_MAX_BYTES:
            raise ValueError("not a run record")
        record = json.loads(f.read(RECORD_MAX_BYTES + 1))
    if not isinstance(record, dict):
        raise ValueError("not a run record")
    return record


def _list(record: dict[str, Any], key: str) -> list[str]:
    """A list of names from the record; anything else (a string would be its letters) is none."""
    value = record.get(key, [])
    return [str(item) for item in value] if isinstance(value, list) else []


def _plain_name(name: object) -> str:
    """A record names files in the output directory itself: nothing else is ever removed."""
    text = str(name)
    return text if text and "/" not in text and text not in (".", "..") else ""
