"""The supervisor on its own: backoff, restarts, graceful and forced stops, with real processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cli.hypervisord import parse_listen
from hypersdk.lib.supervisor import backoff_delay, describe_exit
from tests.processes import LineCollectingProcess

BASE_DIR = Path(__file__).resolve().parent.parent
DEADLINE = LineCollectingProcess.deadline

# Runs a Supervisor in its own process (it needs the main thread for its signal handlers).
SUPERVISOR_SCRIPT = """
import json, sys
from hypersdk.lib.supervisor import Child, Supervisor
spec = json.loads(sys.argv[1])
children = [Child(**child) for child in spec.pop("children")]
supervisor = Supervisor(children, **spec)
sys.exit(supervisor.run(on_started=lambda: supervisor.say("all started")))
"""


class SupervisorProcess(LineCollectingProcess):
    """A supervisor subprocess whose output lines are collected as they arrive."""

    poll_interval = 0.05

    def __init__(self, children: list[dict], **options) -> None:
        spec = json.dumps({"children": children, **options})
        super().__init__([sys.executable, "-c", SUPERVISOR_SCRIPT, spec], cwd=BASE_DIR)

    def wait_for_line(self, pattern: str) -> re.Match:
        regex = re.compile(pattern)
        return self.wait_for(
            lambda: next((m for line in list(self.lines) if (m := regex.search(line))), None), repr(pattern)
        )

    def child_pid(self, name: str) -> int:
        return int(self.wait_for_line(rf"^supervisor: started {name} \(pid (\d+)\)").group(1))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def run_supervisor():
    started: list[SupervisorProcess] = []

    def run(children: list[dict], **options) -> SupervisorProcess:
        options.setdefault("name", "supervisor")
        started.append(SupervisorProcess(children, **options))
        return started[-1]

    yield run
    for supervisor in started:
        supervisor.close()


def python_child(name: str, code: str, **extra) -> dict:
    return {"name": name, "argv": [sys.executable, "-u", "-c", code], **extra}


SLEEPER = "import time; print('up'); time.sleep(600)"
IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up'); time.sleep(600)"
)


def test_backoff_doubles_from_one_second_up_to_a_minute():
    assert [backoff_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_is_capped_even_after_very_many_failures():
    assert backoff_delay(10_000) == 60


def test_backoff_honours_custom_bounds():
    assert [backoff_delay(n, initial=0.5, maximum=3) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]


def test_listen_address_is_host_and_port():
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen("[::1]:8443") == ("::1", 8443)


@pytest.mark.parametrize("value", ["8080", "localhost", ":8080", "host:0", "host:70000", "host:http"])
def test_listen_address_without_a_valid_port_is_refused(value):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(value)


def test_exit_is_described_by_status_or_signal_name():
    assert describe_exit(3) == "status 3"
    assert describe_exit(-9) == "signal SIGKILL"


def test_child_output_is_prefixed_with_its_name(run_supervisor):
    supervisor = run_supervisor([python_child("talker", "import time; print('hello'); time.sleep(600)")])
    supervisor.wait_for_line(r"^talker: hello$")
    assert supervisor.stop() == 0


def test_ansi_colours_are_removed_from_child_output(run_supervisor):
    code = "import time; print('\\x1b[31mred\\x1b[0m text'); time.sleep(600)"
    supervisor = run_supervisor([python_child("painter", code)])
    supervisor.wait_for_line(r"^painter: red text$")
    assert supervisor.stop() == 0
    assert "\x1b" not in supervisor.output


def test_crashing_child_is_restarted_with_growing_delays(run_supervisor):
    supervisor = run_supervisor(
        [python_child("crasher", "import sys; print('boom'); sys.exit(3)")],
        initial_backoff=0.05,
        max_backoff=0.2,
    )
    supervisor.wait_for(lambda: supervisor.output.count("restarting crasher") >= 4, "four restarts")
    assert supervisor.stop() == 0
    delays = re.findall(
        r"crasher exited \(status 3\) after [\d.]+ s; restarting in ([\d.]+) s", supervisor.output
    )
    assert [float(d) for d in delays[:4]] == [0.05, 0.1, 0.2, 0.2]


def test_backoff_resets_after_the_child_stayed_up(run_supervisor, tmp_path):
    # Each run lives 0.3 s, longer than stable_after: every exit counts as a first failure.
    code = "import time; time.sleep(0.3)"
    supervisor = run_supervisor(
        [python_child("steady", code)], initial_backoff=0.05, max_backoff=10, stable_after=0.1
    )
    supervisor.wait_for(lambda: supervisor.output.count("restarting steady") >= 3, "three restarts")
    assert supervisor.stop() == 0
    delays = re.findall(r"steady exited .* restarting in ([\d.]+) s", supervisor.output)
    assert set(delays) == {"0.05"}


def test_killed_child_is_started_again(run_supervisor):
    supervisor = run_supervisor([python_child("sleeper", SLEEPER)], initial_backoff=0.05)
    first = supervisor.child_pid("sleeper")
    psutil.Process(first).kill()
    supervisor.wait_for_line(r"sleeper exited \(signal SIGKILL\)")
    supervisor.wait_for_line(r"^supervisor: restarting sleeper")
    second = supervisor.wait_for(
        lambda: [int(p) for p in re.findall(r"started sleeper \(pid (\d+)\)", supervisor.output)][1:],
        "the second start",
    )[0]
    assert second != first and psutil.pid_exists(second)
    assert supervisor.stop() == 0


def test_sigterm_stops_every_child_and_exits_zero(run_supervisor):
    supervisor = run_supervisor([python_child("one", SLEEPER), python_child("two", SLEEPER)])
    supervisor.wait_for_line("all started")
    pids = [supervisor.child_pid("one"), supervisor.child_pid("two")]
    assert supervisor.stop() == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids)
    assert "one stopped (signal SIGTERM)" in supervisor.output


def test_child_ignoring_sigterm_is_killed_after_the_grace_period(run_supervisor):
    supervisor = run_supervisor([python_child("stubborn", IGNORES_SIGTERM)], stop_timeout=0.5)
    supervisor.wait_for_line(r"^stubborn: up$")
    pid = supervisor.child_pid("stubborn")
    assert supervisor.stop() == 0
    assert "stubborn did not stop in time; killing it" in supervisor.output
    assert "stubborn stopped (signal SIGKILL)" in supervisor.output
    assert not psutil.pid_exists(pid)


def signal_pending(pid: int, signum: int) -> bool:
    """True while ``signum`` waits to be delivered to process ``pid`` (its /proc status)."""
    fields = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
    return bool(pending & (1 << (signum - 1)))


def test_duplicate_stop_signals_still_stop_gracefully(run_supervisor, tmp_path):
    # make and timeout both forward SIGTERM: the copy must not turn into "kill now". The child
    # takes its time to stop (until the test lets it), so the copy surely arrives while it does.
    release = tmp_path / "release"
    code = (
        "import pathlib, signal, sys, time\n"
        f"def stop(*_):\n"
        f"    print('stopping slowly', flush=True)\n"
        f"    while not pathlib.Path({str(release)!r}).exists(): time.sleep(0.05)\n"
        f"    print('clean exit'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop); print('up'); time.sleep(600)"
    )
    # However late the copy comes on a busy machine, it is within this window.
    supervisor = run_supervisor([python_child("careful", code)], repeat_signal_seconds=3600)
    supervisor.wait_for_line(r"^careful: up$")
    supervisor.process.send_signal(signal.SIGTERM)
    supervisor.wait_for_line(r"^careful: stopping slowly$")  # the first was handled: no merging
    supervisor.process.send_signal(signal.SIGTERM)
    supervisor.wait_for(lambda: not signal_pending(supervisor.process.pid, signal.SIGTERM), "the copy")
    release.touch()
    assert supervisor.process.wait(timeout=DEADLINE) == 0
    supervisor.wait_for_line(r"careful stopped \(status 0\)")
    assert "careful: clean exit" in supervisor.output


def test_second_ctrl_c_kills_without_waiting_for_the_grace_period(run_supervisor):
    # No window for copies: however soon it comes, the second Ctrl+C is a second one.
    supervisor = run_supervisor(
        [python_child("stubborn", IGNORES_SIGTERM)], stop_timeout=3600, repeat_signal_seconds=0
    )
    supervisor.wait_for_line(r"^stubborn: up$")
    supervisor.process.send_signal(signal.SIGINT)
    supervisor.wait_for_line(r"^supervisor: stopping stubborn")
    supervisor.process.send_signal(signal.SIGINT)
    assert supervisor.process.wait(timeout=DEADLINE) == 0
    supervisor.wait_for_line(r"stubborn stopped \(signal SIGKILL\)")


def test_grandchildren_are_killed_with_their_parent(run_supervisor, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', {IGNORES_SIGTERM!r}]); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('up'); time.sleep(600)"
    )
    supervisor = run_supervisor([python_child("parent", code)])
    supervisor.wait_for_line(r"^parent: up$")
    grandchild = int(pid_file.read_text())
    assert supervisor.stop() == 0
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"


def test_stop_last_child_is_stopped_after_the_others(run_supervisor):
    supervisor = run_supervisor(
        [python_child("backing", SLEEPER, stop_last=True), python_child("app", SLEEPER)]
    )
    supervisor.wait_for_line("all started")
    assert supervisor.stop() == 0
    out = supervisor.output
    assert out.index("app stopped") < out.index("stopping backing")


def test_children_start_after_the_ready_one_answers(run_supervisor, tmp_path):
    # The first child becomes ready only when its marker file exists; that takes it a moment.
    marker = tmp_path / "ready"
    code = f"import pathlib, time; time.sleep(0.5); pathlib.Path({str(marker)!r}).touch(); time.sleep(600)"
    ready = f"lambda: __import__('pathlib').Path({str(marker)!r}).exists()"
    script = SUPERVISOR_SCRIPT.replace(
        'children = [Child(**child) for child in spec.pop("children")]',
        f'children = [Child(**spec.pop("children")[0], ready={ready}), Child(**spec.pop("second"))]',
    )
    spec = {
        "children": [python_child("slow", code)],
        "second": python_child("fast", SLEEPER),
        "name": "supervisor",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(spec)], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "all started" in line:
                break
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    out = "".join(lines) + rest
    assert marker.exists()
    assert out.index("started slow") < out.index("started fast")


def test_child_dying_before_it_is_ready_fails_start_up(run_supervisor):
    script = SUPERVISOR_SCRIPT.replace(
        'children = [Child(**child) for child in spec.pop("children")]',
        'children = [Child(**child, ready=lambda: False) for child in spec.pop("children")]',
    )
    spec = {"children": [python_child("doomed", "import sys; sys.exit(4)")], "name": "supervisor"}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(spec)],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 1
    assert "start-up failed: doomed exited (status 4) during start-up" in result.stdout


def test_child_whose_program_is_missing_fails_start_up_and_stops_the_others(run_supervisor, tmp_path):
    supervisor = run_supervisor(
        [python_child("fine", SLEEPER), {"name": "ghost", "argv": [str(tmp_path / "no-such-program")]}]
    )
    assert supervisor.process.wait(timeout=DEADLINE) == 1
    supervisor.wait_for_line(r"^supervisor: start-up failed: cannot start ghost: .*No such file")
    supervisor.wait_for_line(r"^supervisor: fine stopped \(signal SIGTERM\)")
