"""``hyperctl logs [-f] [-tail N] <job-id>``: a job's log, followed until it ends with -f."""

from __future__ import annotations

from typing import Any

from cli.backends import JobsBackend, UsageError
from cli.flags import go_flag
from cli.follow import show_logs
from cli.terminal import Terminal


def register(subparsers, parents) -> None:
    parser = subparsers.add_parser("logs", parents=parents, help="a job's log lines")
    parser.add_argument("job_id", metavar="JOB_ID")
    go_flag(parser, "follow", "-f", action="store_true", help="print new lines until the job has finished")
    go_flag(parser, "tail", type=int, metavar="N", help="only the last N lines")
    parser.set_defaults(run=run)


def run(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    if opts["tail"] is not None and opts["tail"] < 0:
        raise UsageError("-tail must be 0 or more")
    return show_logs(backend, opts["job_id"], terminal, tail=opts["tail"], follow=opts["follow"])
