"""``manage.py hyperctl``: the same command line as the ``hyperctl`` console script
(``cli.hyperctl.main``), under Django's name for it."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import CommandParser

from cli.console_script import ConsoleScriptCommand
from cli.hyperctl.main import DESCRIPTION, add_commands, run


class Command(ConsoleScriptCommand):
    help = DESCRIPTION
    requires_system_checks: list[str] = []

    def run_from_argv(self, argv: list[str]) -> None:
        """From a shell: our parser only (Django's own options are not hyperctl's), named
        ``hyperctl`` as a console script, ``manage.py hyperctl`` under manage.py."""
        from cli.hyperctl.main import main
        from cli.pipes import quiet_on_broken_pipe

        program, name = Path(argv[0]).name, argv[1]
        prog = name if program == name else f"{program} {name}"
        with quiet_on_broken_pipe(prog):
            code = main(argv[2:], prog=prog)
        if code:
            sys.exit(code)

    def add_arguments(self, parser: CommandParser) -> None:
        add_commands(parser)  # call_command() parses with Django's parser: the same flags

    def handle(self, *args, **opts) -> None:
        code = run(opts, self.stdout._out, self.stderr._out)
        if code:
            sys.exit(code)
