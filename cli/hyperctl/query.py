"""``hyperctl query``: jobs by -status or -vm, newest first, or one job in detail with -id."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from cli import render
from cli.backends import JOB_STATUSES, JobsBackend, UsageError
from cli.flags import go_flag, whole_number
from cli.terminal import Terminal

# The most jobs -limit asks for: a million, as many as -tail's lines (0 asks for every one).
MAX_LIMIT = 1_000_000
# Shell completion offers the newest jobs' ids only (a Tab must not fetch a long history), and
# only ids a shell reads as plain text: the API's ids are of this shape (exports.models.new_job_id),
# at most 32 characters (Job.id's max_length); never one starting with "-", read as a flag.
COMPLETION_LIMIT = 200
COMPLETABLE_ID = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,31}")


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
    # For the completion script only (cli.completion): the ids it may offer, one a line.
    go_flag(parser, "complete-ids", metavar="PREFIX", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    if opts["complete_ids"] is not None:
        # The prefix filters first (the daemon's id_prefix), then the newest 200 of those; the
        # startswith below also keeps a daemon that ignores id_prefix (an older one) to the prefix.
        found = backend.query_jobs(id_prefix=opts["complete_ids"] or None, limit=COMPLETION_LIMIT)
        for job in found["results"]:
            job_id = str(job["id"])
            if job_id.startswith(opts["complete_ids"]) and COMPLETABLE_ID.fullmatch(job_id):
                terminal.say(job_id)
        return 0
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
