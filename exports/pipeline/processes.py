"""Run an external tool (hyper2kvm, qemu-img) in its own process group, streaming its output.

A timeout or a cancel kills the whole group, so a converter's children die with it. Its
command line and output reach the job log through ``command_line`` (secrets masked) and a
``ToolOutput`` (bounded; progress lines become progress, not log lines).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exports.pipeline.progress import CancelToken, ProgressReporter
from hypersdk.lib.redaction import MASK, mask_url

# qemu-img's ``-p`` progress, one ``    (12.34/100%)`` per update (\r-separated: read with
# universal newlines, each is a line).
_QEMU_PROGRESS = re.compile(r"^\s*\((\d+(?:\.\d+)?)/100%\)\s*$")
# A flag whose value is a secret, as ``--password x`` or ``--password=x``: a secret word anywhere
# in its name, or a short one (``pass``, ``pwd``, ``auth``) as a whole part of it (``--vc-pass``,
# not ``--bypass-cache``). ``-p`` alone is qemu-img's progress switch, not a password.
_SECRET_NAME = (
    r"(?:[\w-]*(?:password|passwd|secret|token|credential|api[-_]?key)[\w-]*"
    r"|(?:[a-z0-9]+[-_])*(?:pass|pwd|auth)(?:[-_][a-z0-9]+)*)"
)
_SECRET_FLAG = re.compile(rf"^-{{1,2}}{_SECRET_NAME}$", re.IGNORECASE)
_SECRET_ASSIGNMENT = re.compile(rf"^(-{{0,2}}{_SECRET_NAME}=).+$", re.IGNORECASE)
OUTPUT_LINES_LOGGED = 200  # per tool run: a converter's chatter must not drown the job log
OUTPUT_LINE_CHARS = 500


def qemu_img_fraction(line: str) -> float | None:
    """``"    (42.50/100%)"`` -> ``0.425``; None for any other line."""
    match = _QEMU_PROGRESS.match(line)
    return min(float(match.group(1)) / 100.0, 1.0) if match else None


def command_line(command: Sequence[str]) -> str:
    """The command as a shell would read it, with every secret masked: a value after a
    ``--password``-like flag, ``password=...``-like assignments, a URL's credentials and query."""
    shown: list[str] = []
    hide_next = False
    for argument in command:
        if hide_next:
            shown.append(MASK)
            hide_next = False
            continue
        if _SECRET_FLAG.match(argument):
            hide_next = True
            shown.append(argument)
        elif match := _SECRET_ASSIGNMENT.match(argument):
            shown.append(match.group(1) + MASK)
        elif "://" in argument:
            shown.append(mask_url(argument))
        else:
            shown.append(argument)
    return shlex.join(shown)


class ToolOutput:
    """A tool's output lines into the log, prefixed, at most ``limit`` of them (each cut to
    ``OUTPUT_LINE_CHARS``); ``close`` says how many more there were. Blank lines are dropped."""

    def __init__(self, reporter: ProgressReporter, prefix: str, *, limit: int = OUTPUT_LINES_LOGGED) -> None:
        self._reporter = reporter
        self._prefix = prefix
        self._limit = limit
        self.logged = 0
        self.left_out = 0

    def line(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self.logged >= self._limit:
            self.left_out += 1
            return
        self.logged += 1
        if len(text) > OUTPUT_LINE_CHARS:
            text = text[:OUTPUT_LINE_CHARS] + "…"
        self._reporter.log(logging.INFO, f"{self._prefix}: {text}")

    def close(self) -> None:
        if self.left_out:
            self._reporter.log(
                logging.INFO, f"{self._prefix}: {self.left_out} more output line(s) not logged"
            )


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
    on_tick: Callable[[], None] | None = None,
    cwd: str | None = None,
) -> ProcessResult:
    """Run ``command``; raise ProcessTimeout after ``timeout`` s, ExportCancelled on cancel.
    ``on_line(line)`` gets each output line; ``on_tick()`` is called about every 0.2 s while the
    tool runs (to look at what it has written so far)."""
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
            if qemu_img_fraction(line) is None:  # progress says nothing an error message needs
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
                if on_tick is not None:
                    on_tick()
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
