"""A management command that is also a console script: ``hyperexport`` (through Django's parser)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class OneLineCommandParser(CommandParser):
    """A usage error is one line, ``<prog>: error: <what>``, and exit status 2 (``-h`` shows the
    usage); called from code, a CommandError as Django's parser raises."""

    def error(self, message: str):  # type: ignore[override]
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message}\n")
        super().error(message)


def _one_line_errors(parser: argparse.ArgumentParser, prog: str, renamed: str) -> None:
    """Every parser of the tree gives one-line errors, under the command's name ``renamed``
    (subcommands took their names from ``prog``, the name Django gave first)."""
    parser.__class__ = OneLineCommandParser
    if parser.prog.startswith(prog):
        parser.prog = renamed + parser.prog[len(prog) :]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _one_line_errors(subparser, prog, renamed)


class ConsoleScriptCommand(BaseCommand):
    """A management command that is also a console script (``hyperctl``, ``hyperexport``).

    Django names the parser "<argv0> <command>", which reads "hyperctl hyperctl" when the
    console script is argv0; under ``manage.py`` it stays "manage.py hyperctl".
    Django's own options are left out of the help: they are not the command's.
    """

    suppressed_base_arguments = {
        "--version",
        "--verbosity",
        "--settings",
        "--pythonpath",
        "--traceback",
        "--no-color",
        "--force-color",
        "--skip-checks",
    }

    def run_from_argv(self, argv: list[str]) -> None:
        # manage.py hyperexport|hyperctl as the console scripts: undecodable bytes are a usage error.
        from hypersdk.cli import refuse_undecodable

        refuse_undecodable(f"{Path(argv[0]).name} {argv[1]}" if len(argv) > 1 else "hyperexport", argv[2:])
        super().run_from_argv(argv)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        prog = parser.prog
        _one_line_errors(parser, prog, subcommand if Path(prog_name).name == subcommand else prog)
        return parser
