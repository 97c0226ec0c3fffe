"""``hyperctl completion bash|zsh``: the shell completion script, generated from the parser."""

from __future__ import annotations

from typing import Any

from cli.terminal import Terminal

SHELLS = ("bash", "zsh")


def register(subparsers, parents) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print the shell completion script (bash or zsh)",
        description="Completes subcommands, flags, their choices and job ids. Enable it with one "
        "line in ~/.bashrc: source <(hyperctl completion bash), or in ~/.zshrc: "
        "source <(hyperctl completion zsh).",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(run=run, needs_backend=False)


def run(backend: None, opts: dict[str, Any], terminal: Terminal) -> int:
    from cli.completion import SCRIPTS
    from cli.hyperctl.main import build_parser

    terminal.say(SCRIPTS[opts["shell"]](build_parser("hyperctl")).rstrip("\n"))
    return 0
