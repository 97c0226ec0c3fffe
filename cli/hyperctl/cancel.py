"""``hyperctl cancel <job-id>``: a pending job is cancelled at once, a running one stops within seconds."""

from __future__ import annotations

from typing import Any

from cli import render
from cli.backends import JobsBackend
from cli.terminal import Terminal


def register(subparsers, parents) -> None:
    parser = subparsers.add_parser("cancel", parents=parents, help="cancel a pending or running job")
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.set_defaults(run=run)


def run(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    terminal.say(render.cancel_line(backend.cancel_job(opts["job_id"])))
    return 0
