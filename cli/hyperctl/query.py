"""``hyperctl query``: jobs by -status or -vm, newest first, or one job in detail with -id."""

from __future__ import annotations

import json
from typing import Any

from cli import render
from cli.backends import JOB_STATUSES, JobsBackend, UsageError
from cli.flags import go_flag, whole_number
from cli.terminal import Terminal

# The most jobs -limit asks for: a million, as many as -tail's lines (0 asks for every one).
MAX_LIMIT = 1_000_000


def register(subparsers, parents) -> None:
    parser = subparsers.add_parser("query", parents=parents, help="list jobs, or show one job in detail")
    go_flag(parser, "status", choices=[*JOB_STATUSES, "all"], help="only jobs in this state")
    go_flag(parser, "id", dest="job_id", metavar="JOB_ID", help="show this job in detail")
    go_flag(parser, "vm", metavar="TEXT", help="only jobs whose VM path contains TEXT")
    go_flag(
        parser,
        "limit",
        type=whole_number("limit", 0, MAX_LIMIT),
        default=50,
        metavar="N",
        help="at most N jobs (default 50; 0: all)",
    )
    go_flag(parser, "json", action="store_true", help="print the API's JSON")
    go_flag(parser, "quiet", action="store_true", help="only job-id<TAB>status<TAB>vm-path lines")
    parser.set_defaults(run=run)


def run(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    if opts["job_id"]:
        if opts["status"] or opts["vm"]:
            raise UsageError("-id shows one job: give it without -status or -vm")
        job = backend.get_job(opts["job_id"])
        if opts["json"]:
            terminal.say(json.dumps(job, indent=2))
        else:
            for line in render.job_tsv([job]) if opts["quiet"] else render.job_detail(job):
                terminal.say(line)
        return 0
    found = backend.query_jobs(status=opts["status"], vm=opts["vm"], limit=opts["limit"] or None)
    jobs = found["results"]
    if opts["json"]:
        terminal.say(json.dumps(found, indent=2))
    elif opts["quiet"]:
        for line in render.job_tsv(jobs):
            terminal.say(line)
    elif not jobs:
        terminal.say(_nothing_found(opts))
    else:
        for line in render.job_table(jobs):
            terminal.say(line)
        if found["count"] > len(jobs):
            terminal.say(f"({len(jobs)} of {found['count']} jobs shown; -limit 0 shows them all)")
    return 0


def _nothing_found(opts: dict[str, Any]) -> str:
    status = opts["status"] if opts["status"] not in (None, "all") else ""
    text = f"no {status} jobs" if status else "no jobs"
    return text + (f" for VMs matching {opts['vm']!r}" if opts["vm"] else "")
