"""Progress, logging and cancellation as the export pipeline sees them.

The pipeline never prints: it reports to a ``ProgressReporter`` (a terminal bar in the CLI,
the job's database row and websocket group in the daemon) and polls a ``CancelToken``.

How far a run is, in one number: the phases that move bytes are weighed by the bytes they
move, in units of the exported files' size S (``phase_weights``, the one place they are set):

======================  ======  ==========================================================
phase                   weight  the bytes it moves
======================  ======  ==========================================================
``downloading``         1       the files, from the NFC server to the output directory
``packaging`` (OVA)     1       the files copied into the tar (+1 under ``-compress``: the
                                gzip pass reads them once more)
``converting``          1       qemu-img (or hyper2kvm) reads each disk once
``verifying``           1 (+2)  the SHA-256 re-read of the files; with a conversion,
                                ``qemu-img compare`` reads each source and its output (+2)
======================  ======  ==========================================================

Each phase reports its own bytes done/total through a ``PhaseMeter``; ``OverallProgress`` turns
the phase's fraction into the run's percentage: the weights of the phases before it plus its
fraction of its own weight, over the sum. Phases that move no bytes (connecting, waiting for a
lease, describing, writing the manifest, an OVF's ``.mf``/``.ovf``) carry no weight and hold the
percentage where it is. The percentage never goes backwards (a retried disk counts again from
zero, the percentage holds until it passes), and reaches 100 only when the run completes or
the last weighted phase ends.
"""

from __future__ import annotations

import dataclasses
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
    from here (``PROGRESS_FIELDS``), in this order.

    ``percent`` (0-100) and ``eta_seconds`` are the whole run's (see the module docstring);
    ``phase``, ``current_file``, ``bytes_done``/``bytes_total`` (bytes) and ``rate_bps``
    (bytes per second) are the current phase's."""

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


# The phases that move bytes, as their snapshots name them.
DOWNLOADING = "downloading"
PACKAGING = "packaging"
CONVERTING = "converting"
VERIFYING = "verifying"
COMPLETED = "completed"


def phase_weights(*, ova: bool, compress: bool, convert: bool, verify: bool) -> dict[str, float]:
    """The weight of each phase a run will go through, in order, in units of the exported
    files' size (the table in the module docstring)."""
    weights = {DOWNLOADING: 1.0}
    if ova:
        weights[PACKAGING] = 2.0 if compress else 1.0
    if convert:
        weights[CONVERTING] = 1.0
    if verify:
        weights[VERIFYING] = 3.0 if convert else 1.0
    return weights


class OverallProgress:
    """A ``ProgressReporter`` in front of another: phase snapshots in (``percent`` is the
    phase's own), run snapshots out (``percent`` and ``eta_seconds`` are the run's).

    The ETA scales the time since the first byte moved by what is left:
    ``(now - t0) * (100 - p) / (p - p0)``, where ``t0``/``p0`` are the time and percentage of
    the first snapshot that moved (connecting, the lease and the descriptor move no bytes and
    would otherwise make the first estimates hundreds of times too long). No estimate before
    a second of work or 0.5 % has gone by: a guess from a few milliseconds only misleads.
    """

    MIN_SECONDS = 1.0
    MIN_PERCENT = 0.5

    def __init__(
        self,
        reporter: ProgressReporter,
        weights: dict[str, float],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reporter = reporter
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._percent = 0.0
        self._first: tuple[float, float] | None = None  # (time, percent) when bytes first moved
        total = sum(weights.values()) or 1.0
        self._spans: dict[str, tuple[float, float]] = {}  # phase -> (start %, width %)
        start = 0.0
        for phase, weight in weights.items():
            self._spans[phase] = (100.0 * start / total, 100.0 * weight / total)
            start += weight

    def overall(self, snapshot: ProgressSnapshot) -> float:
        """The run's percentage after ``snapshot``, never below the last one."""
        with self._lock:
            if snapshot.phase == COMPLETED:
                value = 100.0
            elif snapshot.phase in self._spans:
                start, width = self._spans[snapshot.phase]
                value = start + width * min(max(snapshot.percent, 0.0), 100.0) / 100.0
            else:
                value = self._percent
            self._percent = max(self._percent, min(value, 100.0))
            return self._percent

    def progress(self, snapshot: ProgressSnapshot) -> None:
        percent = self.overall(snapshot)
        self._reporter.progress(
            dataclasses.replace(snapshot, percent=round(percent, 1), eta_seconds=self._eta(percent))
        )

    def _eta(self, percent: float) -> float | None:
        now = self._clock()
        if self._first is None:
            if percent <= 0:
                return None
            self._first = (now, percent) if now > self._started else (self._started, 0.0)
            return None
        first_time, first_percent = self._first
        moved, took = percent - first_percent, now - first_time
        if percent >= 100.0:
            return 0.0
        if moved <= 0 or (took < self.MIN_SECONDS and moved < self.MIN_PERCENT):
            return None
        return took * (100.0 - percent) / moved

    def log(self, level: int, message: str) -> None:
        self._reporter.log(level, message)


class PhaseMeter:
    """Counts one phase's bytes, from one thread or several, and reports at most
    ``max_rate_hz`` times a second (``finish`` reports at once).

    Bytes are counted per name (a disk, a package): ``expect`` its size, then ``add`` bytes
    as they move, or ``set`` how far it is when a tool reports a fraction.
    """

    def __init__(
        self,
        reporter: ProgressReporter,
        phase: str,
        *,
        max_rate_hz: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reporter = reporter
        self.phase = phase
        self._clock = clock
        self._lock = threading.Lock()
        self._expected: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._current = ""
        self._started = clock()
        self._interval = 1.0 / max_rate_hz
        self._last_emit = 0.0

    def expect(self, name: str, size: int) -> None:
        with self._lock:
            self._expected[name] = size

    def expected(self, name: str) -> int:
        with self._lock:
            return self._expected.get(name, 0)

    def restart(self, name: str) -> None:
        """A retried file starts again from zero."""
        with self._lock:
            self._done[name] = 0

    def add(self, name: str, nbytes: int) -> None:
        with self._lock:
            self._done[name] = self._done.get(name, 0) + nbytes
            snapshot = self._due_locked(name)
        if snapshot is not None:
            self.reporter.progress(snapshot)

    def set(self, name: str, nbytes: int) -> None:
        """``name`` is ``nbytes`` along (never back: a tool's fraction only grows)."""
        with self._lock:
            self._done[name] = max(self._done.get(name, 0), nbytes)
            snapshot = self._due_locked(name)
        if snapshot is not None:
            self.reporter.progress(snapshot)

    def finish(self, name: str | None = None) -> None:
        """Report now; with ``name``, that file is complete (its expected size is done)."""
        with self._lock:
            if name is not None:
                self._done[name] = max(self._done.get(name, 0), self._expected.get(name, 0))
                self._current = name
            self._last_emit = self._clock()
            snapshot = self._snapshot_locked(self._last_emit)
        self.reporter.progress(snapshot)

    @property
    def bytes_done(self) -> int:
        with self._lock:
            return sum(self._done.values())

    def percent(self) -> float:
        with self._lock:
            return self._snapshot_locked(self._clock()).percent

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            return self._snapshot_locked(self._clock())

    def _due_locked(self, name: str) -> ProgressSnapshot | None:
        self._current = name
        now = self._clock()
        if now - self._last_emit < self._interval:
            return None
        self._last_emit = now
        return self._snapshot_locked(now)

    def _snapshot_locked(self, now: float) -> ProgressSnapshot:
        done = sum(self._done.values())
        total = sum(self._expected.values())
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        percent = min(100.0 * done / total, 100.0) if total else 0.0
        eta = (total - done) / rate if rate > 0 and total >= done else None
        return ProgressSnapshot(
            phase=self.phase,
            percent=round(percent, 1),
            current_file=self._current,
            bytes_done=done,
            bytes_total=total,
            rate_bps=rate,
            eta_seconds=eta,
        )


class TransferMeter(PhaseMeter):
    """The download phase's meter. The expected total is the sum of the disks' actual file
    sizes as the server states them (a streamOptimized VMDK is far smaller than the disk's
    capacity)."""

    def __init__(self, reporter: ProgressReporter, *, max_rate_hz: float = 2.0) -> None:
        super().__init__(reporter, DOWNLOADING, max_rate_hz=max_rate_hz)
