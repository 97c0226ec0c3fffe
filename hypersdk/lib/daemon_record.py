"""Which process is the daemon, in its data directory, so every process on the machine reads the
same uptime: ``GET /status`` (daphne) and the CLIs' local services alike.

hypervisord writes ``<data dir>/hypervisord.json`` (its pid and the kernel's start time of that
pid) when it starts and removes it when it stops. A reader trusts it only while that pid is
alive with that start time: a record left by a killed daemon, or a pid reused since, reads as
no daemon.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil

RECORD_NAME = "hypervisord.json"
# psutil's create_time is the kernel's start time in clock ticks, rounded to float seconds.
_SAME_START = 0.05


def record_path(data_dir: Path) -> Path:
    return Path(data_dir) / RECORD_NAME


def write_daemon_record(data_dir: Path, pid: int | None = None) -> Path:
    """Record ``pid`` (default: this process) as the daemon; atomically (temporary file, rename)."""
    pid = os.getpid() if pid is None else pid
    path = record_path(data_dir)
    temporary = path.with_name(f".{RECORD_NAME}.{os.getpid()}")
    temporary.write_text(json.dumps({"pid": pid, "started": psutil.Process(pid).create_time()}))
    os.replace(temporary, path)
    return path


def remove_daemon_record(data_dir: Path, pid: int | None = None) -> None:
    """Remove the record if it still names ``pid`` (default: this process), not a successor's."""
    pid = os.getpid() if pid is None else pid
    path = record_path(data_dir)
    if (_read(path) or {}).get("pid") == pid:
        path.unlink(missing_ok=True)


def daemon_started_at(data_dir: Path) -> float | None:
    """The recorded daemon's start (Unix seconds), or None when no daemon runs."""
    record = _read(record_path(data_dir))
    if record is None:
        return None
    try:
        started = psutil.Process(record["pid"]).create_time()
        recorded = float(record["started"])  # a record someone edited ("soon", null): no record
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None
    return started if abs(started - recorded) <= _SAME_START else None


def daemon_uptime_seconds(data_dir: Path) -> float | None:
    """Seconds since the recorded daemon started (0.1 s), or None when no daemon runs."""
    started = daemon_started_at(data_dir)
    return None if started is None else round(max(0.0, time.time() - started), 1)


def _read(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep to read
        return None
    return record if isinstance(record, dict) else None
