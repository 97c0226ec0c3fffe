"""``hyperctl status``: the daemon's health, uptime, workers, jobs and machine."""

from __future__ import annotations

import json
from typing import Any

from cli import render
from cli.backends import JobsBackend
from cli.flags import go_flag
from cli.terminal import Terminal


def register(subparsers, parents) -> None:
    parser = subparsers.add_parser("status", parents=parents, help="the daemon's health, jobs and machine")
    go_flag(parser, "json", action="store_true", help="print the API's JSON")
    parser.set_defaults(run=run)


def run(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    status = backend.daemon_status()
    lines = [json.dumps(status, indent=2)] if opts["json"] else render.status_lines(status, backend.where)
    for line in lines:
        terminal.say(line)
    return 0
