"""Keep a few long-lived child processes running; generic (hypervisord's own list of children
and its configuration are in ``cli/hypervisord.py``).

Children start in order (one may have to answer a readiness check before the next starts), a
crashed child is restarted with exponential backoff, and SIGTERM/SIGINT stop them all: SIGTERM,
then SIGKILL after a grace period, ``stop_last`` children (Redis, which the others use) last.
Output is plain, line-buffered ``name: line`` text on one stream, which journald keeps as is.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

# Colour and cursor escapes, dropped so a log line stays plain text.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_PR_SET_PDEATHSIG = 1
# A second stop signal this long after the first means "kill now", not a duplicate.
REPEAT_SIGNAL_SECONDS = 1.0
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def backoff_delay(failures: int, *, initial: float = 1.0, maximum: float = 60.0) -> float:
    """Seconds to wait before restart number ``failures`` (1, 2, 4, ... capped at ``maximum``)."""
    if failures < 1:
        return 0.0
    # min() before the power would overflow for a child that has crashed a thousand times.
    return min(maximum, initial * 2 ** min(failures - 1, 62))


@dataclass(frozen=True)
class Child:
    """One process to keep running."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    # Polled after the first start; the next children start only once it returns True.
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 30.0
    # Stopped after all the others, because they depend on it.
    stop_last: bool = False


@dataclass
class _ChildState:
    spec: Child
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and not _has_exited(self.process)


class StartupFailed(Exception):
    """A child exited or never became ready during start-up."""


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the supervisor dies without stopping us (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Supervisor:
    """Start, watch, restart and stop a list of children; ``run()`` returns the exit status."""

    def __init__(
        self,
        children: list[Child],
        *,
        out: TextIO | None = None,
        name: str = "supervisor",
        stop_timeout: float = 20.0,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        stable_after: float = 60.0,
        poll_interval: float = 0.2,
        repeat_signal_seconds: float = REPEAT_SIGNAL_SECONDS,
    ) -> None:
        self.name = name
        self.repeat_signal_seconds = repeat_signal_seconds
        self.out = out if out is not None else sys.stdout
        self.stop_timeout = stop_timeout
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.poll_interval = poll_interval
        self._states = [_ChildState(child) for child in children]
        self._write_lock = threading.Lock()
        self._stop_signal: int | None = None
        self._stop_requested_at = 0.0
        self._kill_now = False

    # Output

    def write_line(self, prefix: str, text: str) -> None:
        """One plain line, flushed at once, so lines from several children never interleave."""
        line = f"{prefix}: {_ANSI_ESCAPE.sub('', text)}\n"
        with self._write_lock:
            self.out.write(line)
            self.out.flush()

    def say(self, text: str) -> None:
        self.write_line(self.name, text)

    def _pump(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.write_line(name, raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        stream.close()

    # Signals

    def _on_signal(self, signum: int, _frame) -> None:
        now = time.monotonic()
        if self._stop_signal is None:
            self._stop_signal, self._stop_requested_at = signum, now
        elif now - self._stop_requested_at >= self.repeat_signal_seconds:
            # Ctrl+C again: stop waiting for graceful shutdowns. A copy of the first signal
            # arriving at once (make and timeout both forward SIGTERM) does not count.
            self._kill_now = True
        # No Event.set() here: the handler runs in the main thread, which may hold that
        # Event's lock (inside wait or clear) at this moment; setting it would deadlock.
        # The loops poll the flags every few tenths of a second instead.

    @property
    def stopping(self) -> bool:
        return self._stop_signal is not None

    # Children

    def _spawn(self, state: _ChildState) -> None:
        spec = state.spec
        env = None if spec.env is None else {**os.environ, **spec.env}
        process = subprocess.Popen(  # OSError (no such binary, no memory) is the caller's
            spec.argv,
            env=env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own process group: a terminal's Ctrl+C reaches only us, and we decide how each
            # child is stopped; the whole group can be killed, grandchildren included.
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        state.process = process
        state.started_at = time.monotonic()
        state.restart_at = None
        state.reader = threading.Thread(
            target=self._pump, args=(spec.name, process.stdout), name=f"output-{spec.name}", daemon=True
        )
        state.reader.start()
        self.say(f"started {spec.name} (pid {process.pid})")

    def _wait_ready(self, state: _ChildState) -> None:
        spec = state.spec
        assert spec.ready is not None and state.process is not None
        deadline = time.monotonic() + spec.ready_timeout
        while not spec.ready():
            if self.stopping:
                return
            if _has_exited(state.process):
                self._finish(state)
                raise StartupFailed(
                    f"{spec.name} exited ({describe_exit(state.process.returncode)}) during start-up"
                )
            if time.monotonic() > deadline:
                raise StartupFailed(f"{spec.name} was not ready within {spec.ready_timeout:.0f} s")
            time.sleep(0.05)

    def _start_all(self) -> None:
        for state in self._states:
            if self.stopping:
                return
            try:
                self._spawn(state)
            except OSError as exc:
                raise StartupFailed(f"cannot start {state.spec.name}: {exc}") from exc
            if state.spec.ready is not None:
                self._wait_ready(state)

    def _note_exit(self, state: _ChildState, now: float) -> None:
        assert state.process is not None
        self._finish(state)
        uptime = now - state.started_at
        if uptime >= self.stable_after:
            state.failures = 0
        state.failures += 1
        delay = backoff_delay(state.failures, initial=self.initial_backoff, maximum=self.max_backoff)
        state.restart_at = now + delay
        self.say(
            f"{state.spec.name} exited ({describe_exit(state.process.returncode)}) after {uptime:.1f} s; "
            f"restarting in {delay:g} s"
        )

    def _finish(self, state: _ChildState) -> None:
        """After the child's main process exited: kill what is left of its group, reap, drain output."""
        assert state.process is not None
        # Still unreaped, so its pid (the group id) cannot have been reused yet.
        _kill_group(state.process.pid)
        state.process.wait()
        if state.reader is not None:
            state.reader.join(timeout=5)

    def _restart(self, state: _ChildState, now: float) -> None:
        try:
            self._spawn(state)
        except OSError as exc:
            # Counted like a crash: try again later rather than take the other children down.
            state.failures += 1
            delay = backoff_delay(state.failures, initial=self.initial_backoff, maximum=self.max_backoff)
            state.restart_at = now + delay
            self.say(f"cannot start {state.spec.name}: {exc}; retrying in {delay:g} s")

    def _watch(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            for state in self._states:
                if state.process is not None and state.restart_at is None and _has_exited(state.process):
                    self._note_exit(state, now)
                elif state.restart_at is not None and now >= state.restart_at and not self.stopping:
                    self.say(f"restarting {state.spec.name} (restart {state.failures})")
                    self._restart(state, now)
            time.sleep(self.poll_interval)

    def _stop_group(self, states: list[_ChildState]) -> None:
        # Every child not yet reaped, including one that exited while we were being stopped.
        running = [
            state for state in states if state.process is not None and state.process.returncode is None
        ]
        for state in running:
            self.say(f"stopping {state.spec.name} (pid {state.process.pid})")
            _signal(state.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(state.running for state in running) and time.monotonic() < deadline and not self._kill_now:
            time.sleep(0.05)
        for state in running:
            if state.running:
                self.say(f"{state.spec.name} did not stop in time; killing it")
            self._finish(state)
            self.say(f"{state.spec.name} stopped ({describe_exit(state.process.returncode)})")

    def _stop_all(self) -> None:
        self._stop_group([state for state in self._states if not state.spec.stop_last])
        self._stop_group([state for state in self._states if state.spec.stop_last])

    def run(self, on_started: Callable[[], None] | None = None) -> int:
        """Start everything, supervise until SIGTERM/SIGINT, stop everything; 0 unless start-up failed."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        status = 0
        try:
            self._start_all()
            if not self.stopping:
                if on_started is not None:
                    on_started()
                self._watch()
            self.say(f"received {signal.Signals(self._stop_signal).name}; shutting down")
        except StartupFailed as exc:
            self.say(f"start-up failed: {exc}")
            status = 1
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.say("all children stopped")
        return status


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "running"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"


def _has_exited(process: subprocess.Popen) -> bool:
    """Whether the process has exited, without reaping it (its group can still be killed safely)."""
    if process.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return process.poll() is not None
    return info is not None


def _signal(process: subprocess.Popen, signum: int) -> None:
    # os.kill, not send_signal: that would reap the child before its group is cleaned up.
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
