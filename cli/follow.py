"""Following a job by polling it each second: its progress (watch) or its log (logs -f)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from cli import render
from cli.backends import FINISHED_STATUSES, JOB_STATUSES, JobsBackend
from cli.terminal import Terminal

POLL_SECONDS = 1.0


def watch_job(
    backend: JobsBackend,
    job_id: str,
    terminal: Terminal,
    *,
    quiet: bool = False,
    interval: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = datetime.now,
) -> int:
    """A line whenever the job's status, percent or phase changes, then its outcome.

    Returns 0 if it completed, 1 if it failed or was cancelled, 130 on Ctrl+C (the job runs on).
    ``quiet`` keeps only a failure's outcome line.
    """
    said = ""
    try:
        while True:
            job = backend.get_job(job_id)
            if job["status"] not in JOB_STATUSES:  # a status no job has would be watched forever
                raise ValueError(f"unknown job status {job['status']!r}")
            text = render.watch_text(job)
            if text != said and not quiet:
                terminal.say(render.watch_line(job, now()))
            said = text
            if job["status"] in FINISHED_STATUSES:
                completed = job["status"] == "completed"
                if not (quiet and completed):
                    terminal.say(render.outcome_line(job))
                if completed and not quiet:
                    for line in render.domain_lines(job):
                        terminal.say(line)
                return 0 if completed else 1
            sleep(interval)
    except KeyboardInterrupt:
        terminal.note(f"stopped watching; job {job_id} keeps running")
        return 130


def show_logs(
    backend: JobsBackend,
    job_id: str,
    terminal: Terminal,
    *,
    tail: int | None = None,
    follow: bool = False,
    interval: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """A job's log (the last ``tail`` lines); with ``follow``, new lines until the job has
    finished and nothing more arrives."""
    entries = backend.job_logs(job_id, tail=tail)["logs"]
    for entry in entries:
        terminal.say(render.log_line(entry))
    if not follow:
        return 0
    if entries:
        cursor = entries[-1]["id"]
    else:  # -tail 0: only what comes next
        latest = backend.job_logs(job_id, tail=1)["logs"]
        cursor = latest[-1]["id"] if latest else 0
    try:
        while True:
            # The status first: every line written before the job finished is then in this read.
            finished = backend.get_job(job_id)["status"] in FINISHED_STATUSES
            entries = backend.job_logs(job_id, since=cursor)["logs"]
            for entry in entries:
                terminal.say(render.log_line(entry))
            if entries:
                cursor = entries[-1]["id"]
            elif finished:
                return 0
            sleep(interval)
    except KeyboardInterrupt:
        return 130
