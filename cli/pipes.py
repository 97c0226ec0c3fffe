"""A CLI whose reader went away (``hyperctl status | head -1``) stops quietly, as Unix tools do.

The reader closing the pipe is no error of ours: no traceback, and the exit status a shell
reports for a process ended by SIGPIPE, 141 (128 + 13), which ``set -o pipefail`` sees as
``yes | head -1`` does. The signal itself stays ignored (Python's default): an export piped
into ``head`` still cleans up what it wrote instead of dying mid-file.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

BROKEN_PIPE_STATUS = 128 + signal.SIGPIPE


@contextmanager
def quiet_on_broken_pipe() -> Iterator[None]:
    """Exit with ``BROKEN_PIPE_STATUS`` and no traceback when stdout or stderr's reader is gone."""
    try:
        yield
        sys.stdout.flush()  # the last lines may still be buffered: their write fails here
    except BrokenPipeError:
        _silence_standard_streams()
        raise SystemExit(BROKEN_PIPE_STATUS) from None


def _silence_standard_streams() -> None:
    """Point stdout and stderr at /dev/null, so the interpreter's flush at exit cannot fail (and
    print "Exception ignored ... BrokenPipeError") on the bytes still buffered for the pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):  # not a real file (a test's StringIO): nothing to flush
            pass
    os.close(devnull)
