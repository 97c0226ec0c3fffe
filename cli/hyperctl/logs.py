"""``hyperctl logs [-f] [-tail N] <job-id>``: a job's log, followed until it ends with -f."""

from __future__ import annotations

from typing import Any

from cli.backends import JobsBackend
from cli.flags import go_flag, whole_number
from cli.follow import show_logs
from cli.terminal import Terminal
from exports.limits import MAX_TAIL


def register(subparsers, parents) -> None:
    parser = subparsers.add_parser("logs", parents=parents, help="a job's log lines")
    parser.add_argument("job_id", metavar="JOB_ID")
    go_flag(parser, "follow", "-f", action="store_true", help="print new lines until the job has finished")
    go_flag(parser, "tail", type=whole_number("tail", 0, MAX_TAIL), metavar="N", help="only the last N lines")
    parser.set_defaults(run=run)


def run(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    return show_logs(backend, opts["job_id"], terminal, tail=opts["tail"], follow=opts["follow"])
