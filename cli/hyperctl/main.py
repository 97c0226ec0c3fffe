"""``hyperctl``'s command line: its parser (argparse only, no Django) and running one command.

The parser is built without Django so that ``--help``, usage errors and a remote command
(``--daemon-url``) never load the ORM; the local services load it when the command runs
(``cli.backends.open_backend``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from cli.flags import OneLineErrorParser, add_connection_flags, connection_flags_parent

DESCRIPTION = """\
Query, watch and cancel the daemon's export jobs; follow their logs; manage their
schedules and webhooks; list the vCenter's VMs; check the daemon. Local services by default (this machine's
database); a remote daemon with --daemon-url, or $HYPERSDK_DAEMON_URL and $HYPERSDK_API_TOKEN."""

# The guide's examples; `hyperctl COMMAND -h` says more about each command.
EXAMPLES = """\
examples:
  hyperctl status
  hyperctl query -status failed
  hyperctl query -id job-12345
  hyperctl watch job-12345
  hyperctl logs -f job-12345
  hyperctl logs -tail 50 job-12345
  hyperctl cancel job-12345
  hyperctl schedules list
  hyperctl schedules create daily-backup "0 2 * * *" -vm /dc/vm/prod/web01 -output /backups/web01
  hyperctl schedules trigger <schedule-id>
  hyperctl webhooks add https://example.com/webhook job.completed job.failed
  hyperctl webhooks test <index>
  hyperctl vms list -q web -power on
  hyperctl vms info /dc/vm/prod/web01
  hyperctl completion bash      (shell completion; see hyperctl completion -h)

Every flag may be written -flag or --flag. Exit status: 0 done, 1 failed, 2 usage error."""


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The connection flags and every subcommand (``cli.hyperctl.SUBCOMMANDS``) on ``parser``."""
    from cli.hyperctl import SUBCOMMANDS

    add_connection_flags(parser)
    subparsers = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)
    parents = [connection_flags_parent()]
    for subcommand in SUBCOMMANDS:
        subcommand.register(subparsers, parents)


def build_parser(prog: str = "hyperctl") -> argparse.ArgumentParser:
    """Our commands and flags only, the guide's examples after them."""
    parser = OneLineErrorParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_commands(parser)
    return parser


def run(opts: dict[str, Any], out: TextIO, err: TextIO) -> int:
    """Run the parsed command; its exit status (a ``CLIError`` is one line on ``err``)."""
    from cli.terminal import Terminal

    terminal = Terminal(out, err)
    if opts.get("needs_backend", True) is False:
        return terminal.run(lambda: opts["run"](None, opts, terminal))
    from cli.backends import open_backend

    def action() -> int:
        backend = open_backend(opts["daemon_url"], opts["token_file"])
        with backend.reading_answers():
            return opts["run"](backend, opts, terminal)

    return terminal.run(action)


def main(argv: list[str] | None = None, *, prog: str = "hyperctl") -> int:
    """``hyperctl`` with ``argv`` (default: the process's), on the process's stdout and stderr."""
    opts = vars(build_parser(prog).parse_args(sys.argv[1:] if argv is None else argv))
    return run(opts, sys.stdout, sys.stderr)
