"""Terminal presentation of an export: a live bar on a TTY, plain lines otherwise, or nothing."""

from __future__ import annotations

import logging
import time
from typing import TextIO

from exports.pipeline.progress import ProgressSnapshot
from hypersdk.lib.units import human_size


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
        line = f"[{_clock()}] {snapshot.phase} {snapshot.percent:.1f}%"
        if snapshot.bytes_total:
            line += f" {snapshot.current_file} {human_size(snapshot.bytes_done)}/{human_size(snapshot.bytes_total)}"
            line += f" {human_size(snapshot.rate_bps)}/s"
            if snapshot.eta_seconds is not None:
                line += f" ETA {snapshot.eta_seconds:.0f}s"
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
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = Console(file=stream)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task = self.bar.add_task("connecting", total=None)
        self.bar.start()

    def progress(self, snapshot: ProgressSnapshot) -> None:
        description = f"{snapshot.phase} {snapshot.current_file}".strip()
        if snapshot.bytes_total:
            self.bar.update(
                self.task, description=description, completed=snapshot.bytes_done, total=snapshot.bytes_total
            )
        else:
            self.bar.update(self.task, description=description)

    def log(self, level: int, message: str) -> None:
        if level >= logging.INFO:
            self.bar.console.print(f"[{_clock()}] {message}", highlight=False, markup=False)

    def close(self) -> None:
        self.bar.stop()


def reporter_for(stream: TextIO, *, quiet: bool) -> PlainReporter | BarReporter:
    if not quiet and stream.isatty():
        return BarReporter(stream)
    return PlainReporter(stream, quiet=quiet)
