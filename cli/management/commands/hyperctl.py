"""``hyperctl``: the daemon's jobs and schedules from a shell — query, status, watch, logs,
cancel, schedules.

Local services by default (this machine's database, the daemon's workers run the jobs);
a remote daemon with ``--daemon-url`` or $HYPERSDK_DAEMON_URL and $HYPERSDK_API_TOKEN.
"""

from __future__ import annotations

import sys

from django.core.management.base import CommandParser

from cli.backends import open_backend
from cli.flags import ConsoleScriptCommand, add_connection_flags, connection_flags_parent
from cli.hyperctl import SUBCOMMANDS
from cli.terminal import Terminal


class Command(ConsoleScriptCommand):
    help = (
        "Query, watch and cancel the daemon's export jobs; follow their logs; manage their "
        "schedules; check the daemon."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_connection_flags(parser)
        subparsers = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)
        parents = [connection_flags_parent()]
        for subcommand in SUBCOMMANDS:
            subcommand.register(subparsers, parents)

    def handle(self, *args, **opts) -> None:
        terminal = Terminal(self.stdout._out, self.stderr._out)
        code = terminal.run(
            lambda: opts["run"](open_backend(opts["daemon_url"], opts["token_file"]), opts, terminal)
        )
        if code:
            sys.exit(code)
