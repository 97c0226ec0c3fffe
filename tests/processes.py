"""Child processes the tests and benchmarks start: free ports, and stopping them for sure."""

from __future__ import annotations

import socket
import subprocess
import sys


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
