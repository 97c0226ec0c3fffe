"""Run an external tool (hyper2kvm, qemu-img) in its own process group, streaming its output.

A timeout or a cancel kills the whole group, so a converter's children die with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exports.pipeline.progress import CancelToken


class ProcessTimeout(Exception):
    pass


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    output: str
    duration_seconds: float


def run_tool(
    command: Sequence[str],
    *,
    timeout: float,
    cancel: CancelToken | None = None,
    on_line: Callable[[str], None] | None = None,
    cwd: str | None = None,
) -> ProcessResult:
    """Run ``command``; raise ProcessTimeout after ``timeout`` s, ExportCancelled on cancel."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=cwd,
        text=True,
        errors="replace",
    )
    lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=pump, name="tool-output", daemon=True)
    reader.start()
    deadline = started + timeout
    try:
        while process.poll() is None:
            if cancel is not None and cancel.cancelled:
                _kill_group(process)
                cancel.raise_if_cancelled()
            if time.monotonic() > deadline:
                _kill_group(process)
                raise ProcessTimeout(f"{os.path.basename(command[0])} timed out after {timeout:.0f}s")
            try:
                process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if process.poll() is None:
            _kill_group(process)
        reader.join(timeout=5)
    return ProcessResult(process.returncode, "\n".join(lines), time.monotonic() - started)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
