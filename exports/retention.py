"""Retention of job history: finished jobs older than N days are deleted with their logs.

Their export files stay unless asked (``delete_files``): the history is the daemon's, the
exports are the operator's. Pending and running jobs are never touched, and the metrics
counters (rows of their own) keep counting what the deleted jobs did.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from exports.models import Job
from exports.output_roots import inside_export_roots

logger = logging.getLogger(__name__)

BATCH = 500  # jobs deleted per transaction: a long history never holds one huge lock


@dataclass
class PurgeResult:
    jobs: int = 0
    removed_outputs: list[str] = field(default_factory=list)
    kept_outputs: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self, days: int) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        files = ""
        if self.removed_outputs or self.kept_outputs:
            removed = "would remove" if self.dry_run else "removed"
            files = (
                f"; {removed} {len(self.removed_outputs)} output directories, kept {len(self.kept_outputs)}"
            )
        return f"{verb} {self.jobs} finished jobs older than {days} days{files}"


def expired_jobs(older_than_days: int, *, now: datetime | None = None) -> QuerySet[Job]:
    """Finished jobs that ended (or, never started, were created) before the cut-off."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    return Job.objects.filter(
        Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff),
        status__in=Job.FINISHED,
    )


def purge_jobs(
    older_than_days: int, *, delete_files: bool = False, dry_run: bool = False, now: datetime | None = None
) -> PurgeResult:
    """Delete finished jobs older than ``older_than_days`` (JobLogs go with them; schedule runs
    keep their row with the job unset); with ``delete_files``, also the output directories
    they created, if inside an export root and no kept job uses the same directory."""
    if older_than_days < 0:
        raise ValueError("older_than_days must be >= 0")
    result = PurgeResult(dry_run=dry_run)
    expired = expired_jobs(older_than_days, now=now)
    ids = list(expired.values_list("id", flat=True))
    if delete_files:
        for job in expired.only("id", "output_path", "output_created"):
            _remove_output(job, set(ids), result)
    result.jobs = len(ids)
    if dry_run:
        return result
    for start in range(0, len(ids), BATCH):
        with transaction.atomic():
            # Re-checked inside the delete: a job is never deleted unless it is still finished.
            Job.objects.filter(id__in=ids[start : start + BATCH], status__in=Job.FINISHED).delete()
    if result.jobs:
        logger.info(result.summary(older_than_days))
    return result


def purge_expired_jobs() -> PurgeResult:
    """The daily clean-up (Celery beat): HYPERSDK_JOB_RETENTION_DAYS, 0 keeping everything."""
    days = settings.HYPERSDK_JOB_RETENTION_DAYS
    if days <= 0:
        return PurgeResult()
    return purge_jobs(days, delete_files=settings.HYPERSDK_JOB_RETENTION_DELETE_FILES)


def _remove_output(job: Job, purged: set[str], result: PurgeResult) -> None:
    output = Path(os.path.realpath(job.output_path))
    if not output.is_dir():
        return
    if not _removable(job, output, purged):
        result.kept_outputs.append(str(output))
        return
    result.removed_outputs.append(str(output))
    if not result.dry_run:
        shutil.rmtree(output, ignore_errors=True)


def _removable(job: Job, output: Path, purged: set[str]) -> bool:
    """Only a directory the job made itself, strictly inside an export root, holding neither
    a root nor the output of a job that stays."""
    if not job.output_created or not inside_export_roots(output, strictly=True):
        return False
    staying = Job.objects.exclude(id__in=purged).filter(output_path__startswith=str(output))
    for other in staying.values_list("output_path", flat=True).iterator():
        if Path(os.path.realpath(other)).is_relative_to(output):
            return False
    return True
