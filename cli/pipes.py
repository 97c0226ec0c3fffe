"""A CLI whose reader went away (``hyperctl status | head -1``) stops quietly, as Unix tools do;
one whose output cannot be written (``>/dev/full``, stdout closed) says so in one line.

The reader closing the pipe is no error of ours: no traceback, and the exit status a shell
reports for a process ended by SIGPIPE, 141 (128 + 13), which ``set -o pipefail`` sees as
``yes | head -1`` does. The signal itself stays ignored (Python's default): an export piped
into ``head`` still cleans up what it wrote instead of dying mid-file.

Any other failure to write stdout (no space left, an I/O error) is ``<prog>: cannot write
output: <reason>`` and exit status 1, ``--help`` included (argparse would swallow it and exit 0);
a closed stdout fails before the command starts, so nothing runs whose report would be lost.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

BROKEN_PIPE_STATUS = 128 + signal.SIGPIPE
OUTPUT_ERROR_STATUS = 1


class OutputError(Exception):
    """Stdout could not be written. No OSError: argparse's help printing swallows those."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _GuardedStdout:
    """sys.stdout whose write and flush failures (other than a gone reader) are OutputError."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def quiet_on_broken_pipe(prog: str) -> Iterator[None]:
    """Exit with ``BROKEN_PIPE_STATUS`` and no traceback when stdout or stderr's reader is gone;
    ``<prog>: cannot write output: <reason>`` and ``OUTPUT_ERROR_STATUS`` when stdout fails."""
    if sys.stdout is None:  # started with stdout closed (>&-)
        _cannot_write(prog, "standard output is closed")
    if not isinstance(sys.stdout, _GuardedStdout):
        sys.stdout = _GuardedStdout(sys.stdout)
    try:
        try:
            yield
        finally:
            sys.stdout.flush()  # the last lines may still be buffered: their write fails here
    except BrokenPipeError:
        _silence_standard_streams()
        raise SystemExit(BROKEN_PIPE_STATUS) from None
    except OutputError as exc:
        _cannot_write(prog, exc.reason)


def _cannot_write(prog: str, reason: str) -> None:
    if sys.stderr is not None:
        try:
            sys.stderr.write(f"{prog}: cannot write output: {reason}\n")
            sys.stderr.flush()
        except OSError:
            pass
    _silence_standard_streams()
    raise SystemExit(OUTPUT_ERROR_STATUS)


def _silence_standard_streams() -> None:
    """Point stdout and stderr at /dev/null, so the interpreter's flush at exit cannot fail (and
    print "Exception ignored ... BrokenPipeError") on the bytes still buffered for the pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (a test's StringIO): nothing to flush
            pass
    os.close(devnull)
