"""``hyperctl watch <job-id>``: a line per change of status, percent or phase, then the outcome."""

from __future__ import annotations

from typing import Any

from cli.backends import JobsBackend
from cli.follow import watch_job
from cli.terminal import Terminal


def register(subparsers, parents) -> None:
    parser = subparsers.add_parser(
        "watch", parents=parents, help="follow a job's progress until it ends (Ctrl+C: the job keeps running)"
    )
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.set_defaults(run=run)


def run(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    return watch_job(backend, opts["job_id"], terminal)
