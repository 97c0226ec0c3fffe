"""Terminal presentation of an export: a live bar on a TTY, plain lines otherwise, or nothing."""

from __future__ import annotations

import logging
import time
from typing import TextIO

from exports.pipeline.progress import ProgressSnapshot
from hypersdk.lib.units import human_duration, human_size


def progress_detail(snapshot: ProgressSnapshot) -> str:
    """``"1.2 GiB/4.0 GiB 85.3 MiB/s ETA 2m 3s"``: the phase's bytes and rate, the run's ETA."""
    parts = []
    if snapshot.bytes_total:
        parts.append(f"{human_size(snapshot.bytes_done)}/{human_size(snapshot.bytes_total)}")
    if snapshot.rate_bps:
        parts.append(f"{human_size(snapshot.rate_bps)}/s")
    if snapshot.eta_seconds is not None:
        parts.append(f"ETA {human_duration(snapshot.eta_seconds)}")
    return " ".join(parts)


def _clock() -> str:
    return time.strftime("%H:%M:%S")


class PlainReporter:
    """One line per phase change and at most one progress line every ``interval`` seconds."""

    def __init__(self, stream: TextIO, *, interval: float = 2.0, quiet: bool = False) -> None:
        self.stream = stream
        self.interval = interval
        self.quiet = quiet
        self._last_phase = ""
        self._last_line = 0.0

    def progress(self, snapshot: ProgressSnapshot) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if snapshot.phase == self._last_phase and now - self._last_line < self.interval:
            return
        self._last_phase, self._last_line = snapshot.phase, now
        line = " ".join(
            part
            for part in (
                f"[{_clock()}] {snapshot.phase} {snapshot.percent:.1f}%",
                snapshot.current_file,
                progress_detail(snapshot),
            )
            if part
        )
        print(line, file=self.stream, flush=True)

    def log(self, level: int, message: str) -> None:
        if self.quiet and level < logging.ERROR:
            return
        if level >= logging.INFO:
            print(f"[{_clock()}] {message}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class BarReporter:
    """A rich progress bar with bytes, rate and ETA, for a terminal."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.console = Console(file=stream)
        # The bar is the whole run's percentage (every phase weighted by the bytes it moves), so
        # it never jumps back at a phase change; the detail is the current phase's bytes and rate
        # and the run's ETA, the same figures the job page and `hyperctl watch` show.
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[detail]}"),
            console=self.console,
            transient=False,
        )
        self.task = self.bar.add_task("connecting", total=100, detail="")
        self.bar.start()

    def progress(self, snapshot: ProgressSnapshot) -> None:
        self.bar.update(
            self.task,
            description=f"{snapshot.phase} {snapshot.current_file}".strip(),
            completed=snapshot.percent,
            detail=progress_detail(snapshot),
        )

    def log(self, level: int, message: str) -> None:
        if level >= logging.INFO:
            self.bar.console.print(f"[{_clock()}] {message}", highlight=False, markup=False)

    def close(self) -> None:
        self.bar.stop()


def reporter_for(stream: TextIO, *, quiet: bool) -> PlainReporter | BarReporter:
    if not quiet and stream.isatty():
        return BarReporter(stream)
    return PlainReporter(stream, quiet=quiet)
