"""External tools run in their own process group: a timeout or cancel kills their children too."""

import os
import time

import pytest

from exports.pipeline.errors import ExportCancelled
from exports.pipeline.processes import ProcessTimeout, run_tool
from exports.pipeline.progress import CancelToken


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


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    with pytest.raises(ProcessTimeout, match="timed out"):
        run_tool(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], timeout=1)
    child = int(pidfile.read_text())
    for _ in range(50):
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child)


def test_cancel_kills_the_tool():
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(ExportCancelled):
        run_tool(["sleep", "300"], timeout=600, cancel=cancel)
