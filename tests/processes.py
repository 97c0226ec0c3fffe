"""Child processes the tests and benchmarks start: free ports, and stopping them for sure."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest


def daphne_command(port: int) -> list[str]:
    """The daemon's ASGI server (HTTP + websockets) on 127.0.0.1:``port``, as an operator runs it."""
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "hypersdk.asgi:application"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kill_process(process: subprocess.Popen | None) -> None:
    """SIGKILL, as a crash would, and reap it."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def stop_process(process: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """SIGTERM and wait; SIGKILL if it has not gone within ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_process(process)


class LineCollectingProcess:
    """A subprocess (stdout and stderr together) whose output lines a thread collects as they
    arrive, for tests that wait on what it prints.

    ``wait_for`` polls every ``poll_interval`` seconds for at most ``deadline`` seconds; with
    ``exit_fails_wait`` the process exiting while a test waits fails the test at once."""

    deadline = 60.0
    poll_interval = 0.1
    exit_fails_wait = False
    name = "the process"

    def __init__(self, command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, predicate, message: str) -> Any:
        """``predicate()``'s first true value; fails the test on timeout (or exit, see above)."""
        deadline = time.monotonic() + self.deadline
        while not (value := predicate()):
            if self.exit_fails_wait and self.process.poll() is not None:
                time.sleep(0.5)  # let the reader catch the last lines
                pytest.fail(f"{self.name} exited while waiting for {message}:\n{self.output}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {message}; output:\n{self.output}", pytrace=False)
            time.sleep(self.poll_interval)
        return value

    def stop(self) -> int:
        """SIGTERM, then its exit status once it has gone and its last lines are read."""
        self.process.terminate()
        status = self.process.wait(timeout=self.deadline)
        self._reader.join(timeout=self.deadline)
        return status
