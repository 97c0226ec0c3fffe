"""Progress, logging and cancellation as the export pipeline sees them.

The pipeline never prints: it reports to a ``ProgressReporter`` (a terminal bar in the CLI,
the job's database row and websocket group in the daemon) and polls a ``CancelToken``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

from exports.pipeline.errors import ExportCancelled


@dataclass(frozen=True)
class ProgressSnapshot:
    """How far a run is: the one list of progress fields. The job row's columns, the API's
    ``progress``, websocket ``job.progress`` messages and webhook payloads all take theirs
    from here (``PROGRESS_FIELDS``), in this order."""

    percent: float
    phase: str
    current_file: str = ""
    bytes_done: int = 0
    bytes_total: int = 0
    rate_bps: float = 0.0
    eta_seconds: float | None = None


PROGRESS_FIELDS = tuple(item.name for item in fields(ProgressSnapshot))


class ProgressReporter(Protocol):
    def progress(self, snapshot: ProgressSnapshot) -> None: ...

    def log(self, level: int, message: str) -> None: ...


class NullReporter:
    def progress(self, snapshot: ProgressSnapshot) -> None:
        pass

    def log(self, level: int, message: str) -> None:
        logging.getLogger("exports").log(level, message)


class CancelToken:
    """Set from any thread (a signal handler, a cancel request); checked between chunks."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` at cancel time (at once if already cancelled); returns an unregister."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._discard(callback)
        callback()
        return lambda: None

    def _discard(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise ExportCancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if cancelled meanwhile."""
        return self._event.wait(seconds)


class TransferMeter:
    """Counts bytes from parallel downloads and reports at most ``max_rate_hz`` times a second.

    The expected total is the sum of the disks' actual file sizes as the server states them
    (a streamOptimized VMDK is far smaller than the disk's capacity).
    """

    def __init__(self, reporter: ProgressReporter, *, max_rate_hz: float = 2.0) -> None:
        self._reporter = reporter
        self._lock = threading.Lock()
        self._expected: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._current = ""
        self._started = time.monotonic()
        self._interval = 1.0 / max_rate_hz
        self._last_emit = 0.0

    def expect(self, name: str, size: int) -> None:
        with self._lock:
            self._expected[name] = size

    def restart(self, name: str) -> None:
        """A retried disk starts again from zero."""
        with self._lock:
            self._done[name] = 0

    def add(self, name: str, nbytes: int) -> None:
        with self._lock:
            self._done[name] = self._done.get(name, 0) + nbytes
            self._current = name
            now = time.monotonic()
            if now - self._last_emit < self._interval:
                return
            self._last_emit = now
            snapshot = self._snapshot_locked(now)
        self._reporter.progress(snapshot)

    @property
    def bytes_done(self) -> int:
        with self._lock:
            return sum(self._done.values())

    def percent(self) -> float:
        with self._lock:
            return self._snapshot_locked(time.monotonic()).percent

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            return self._snapshot_locked(time.monotonic())

    def _snapshot_locked(self, now: float) -> ProgressSnapshot:
        done = sum(self._done.values())
        total = sum(self._expected.values())
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        percent = min(100.0 * done / total, 100.0) if total else 0.0
        eta = (total - done) / rate if rate > 0 and total >= done else None
        return ProgressSnapshot(
            phase="downloading",
            percent=round(percent, 1),
            current_file=self._current,
            bytes_done=done,
            bytes_total=total,
            rate_bps=rate,
            eta_seconds=eta,
        )
