"""External tools run in their own process group: a timeout or cancel kills their children too."""

import os
import time

import pytest

from exports.pipeline import processes
from exports.pipeline.errors import ExportCancelled
from exports.pipeline.processes import ProcessTimeout, run_tool
from exports.pipeline.progress import CancelToken
from tests.conftest import wait_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; its parent (the killed shell) is gone, so init reaps it.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_output_lines_are_streamed_and_returned():
    seen = []
    result = run_tool(["sh", "-c", "echo one; echo two >&2; exit 3"], timeout=30, on_line=seen.append)
    assert result.returncode == 3
    assert seen == ["one", "two"]


class ClockPastTheDeadlineOnce:
    """``time`` for run_tool: the real clock until ``ready()``, then a day later, so the tool
    times out exactly when the test has seen it start its child, however busy the machine."""

    def __init__(self, ready) -> None:
        self.ready = ready

    def __getattr__(self, name: str):
        return getattr(time, name)

    def monotonic(self) -> float:
        return time.monotonic() + (86400 if self.ready() else 0)


def test_timeout_kills_the_whole_process_group(tmp_path, monkeypatch):
    pidfile = tmp_path / "child.pid"
    monkeypatch.setattr(processes, "time", ClockPastTheDeadlineOnce(lambda: pidfile.exists()))
    with pytest.raises(ProcessTimeout, match=r"^sh timed out after 60s$"):
        run_tool(
            ["sh", "-c", f"sleep 300 & echo $! > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; wait"],
            timeout=60,
        )
    child = int(pidfile.read_text())
    wait_for(lambda: not _alive(child), message="the grandchild to be killed")


def test_cancel_kills_the_tool():
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(ExportCancelled):
        run_tool(["sleep", "300"], timeout=600, cancel=cancel)
