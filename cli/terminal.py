"""Where CLI output goes: results on stdout, notes and errors on stderr, each line flushed at
once (a watcher is often read through a pipe)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from cli.backends import CLIError


class Terminal:
    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def note(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    def run(self, action: Callable[[], int]) -> int:
        """Run a CLI action; a ``CLIError`` becomes ``error: <message>`` and its exit status."""
        try:
            return action()
        except CLIError as exc:
            self.note(f"error: {exc}")
            return exc.exit_code
        except KeyboardInterrupt:
            return 130
