"""Run ``hyperctl`` / ``hyperexport`` (daemon modes) in this process, as their console scripts
would run them, and answer like ``subprocess.run(..., capture_output=True, text=True)``.

A CLI process costs ~1.2 s of start-up (Python, Django, every app) before it prints a byte; the
output formats and error lines are the command's own, so most tests run it here. Each module
keeps a few real subprocess runs (``run_process``): the console script, its environment
parsing and its exit status as a shell sees them.

In process, the command sees ``env`` as ``os.environ`` (the daemon URL, the token) and this
test's settings (the test database, Redis, export roots) where a process would have read the
same values from ``env`` at start-up: run it only with the shared ``cli_env``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def every_export_option(hyper2kvm_path: str, conversion_timeout: int) -> dict[str, Any]:
    """A job's options once every export flag is given (-format ova -compress -manifest
    -manifest-target raw -convert -verify -parallel 2 -power-off -overwrite, the converter at
    ``hyper2kvm_path``, ``conversion_timeout`` in minutes)."""
    return {
        "format": "ova",
        "compress": True,
        "manifest": True,
        "manifest_target": "raw",
        "convert": True,
        "verify": True,
        "parallel": 2,
        "power_off": True,
        "hyper2kvm_path": hyper2kvm_path,
        "conversion_timeout": conversion_timeout,
        "overwrite": True,
    }


def run_process(program: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The installed console script, in its own process."""
    return subprocess.run([str(BIN / program), *args], env=env, capture_output=True, text=True, timeout=600)


def run_in_process(program: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The console script's command run here: its stdout, stderr and exit status."""
    from django.core.management import load_command_class

    stdout, stderr = io.StringIO(), io.StringIO()
    with _environ(env), redirect_stdout(stdout), redirect_stderr(stderr):
        command = load_command_class("cli", program)
        try:
            command.run_from_argv([program, program, *args])
            code = 0
        except SystemExit as exc:
            code = _exit_status(exc)
    return subprocess.CompletedProcess([program, *args], code, stdout.getvalue(), stderr.getvalue())


def _exit_status(exc: SystemExit) -> int:
    """What a process exiting with ``exc`` reports: None is 0, a message is printed and 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")
    return 1


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
