"""A schedule's retention: the output directories of its finished runs older than the last
``retention`` runs are removed, but only what is provably that schedule's run directory, inside
the export roots, and holding no other job's output."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from django.db.models import Q

from exports.models import Job
from exports.output_ownership import paths_overlap
from exports.output_roots import inside_export_roots
from schedules.models import Schedule, ScheduleRun


def apply_retention(schedule: Schedule) -> list[str]:
    """Remove the output directories of finished runs older than the last ``retention`` runs."""
    runs = (
        ScheduleRun.objects.filter(schedule=schedule, job__isnull=False)
        .select_related("job")
        .order_by("-slot")
    )
    removed = []
    for run in runs[schedule.retention :]:
        job = run.job
        output = Path(job.output_path)
        if (
            job.is_finished
            and output.is_dir()
            and _is_run_directory(schedule, output)
            and inside_export_roots(output, strictly=True)
            and not _holds_another_jobs_output(job)
        ):
            shutil.rmtree(output, ignore_errors=True)
            removed.append(str(output))
    return removed


def _holds_another_jobs_output(job: Job) -> bool:
    """Whether another job's output is this run's directory or inside it: then it stays."""
    path = job.output_path.rstrip("/")
    others = Job.objects.exclude(id=job.id).filter(
        Q(output_path=path) | Q(output_path__startswith=f"{path}/")
    )
    # startswith is case-insensitive on SQLite: the exact test is made here.
    return any(paths_overlap(other, path) for other in others.values_list("output_path", flat=True))


def _is_run_directory(schedule: Schedule, output: Path) -> bool:
    """Named as run_directory names a run of this schedule, a cron slot's or a trigger's (with
    microseconds), with the UTC offset a wall time repeated by an autumn shift gets, or as
    earlier versions did, ``<name>-<stamp>``, for a name that was a plain file name."""
    stamp = r"-[0-9]{8}-[0-9]{6}(?:-[0-9]{6})?(?:[+-][0-9]{4})?"
    if re.fullmatch(rf"(?:[a-z0-9-]+-)?{re.escape(schedule.id)}{stamp}", output.name):
        return True
    legacy = "/" not in schedule.name and schedule.name not in (".", "..")
    return legacy and re.fullmatch(rf"{re.escape(schedule.name)}{stamp}", output.name) is not None
