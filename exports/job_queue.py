"""The worker side of the job queue: send pending jobs to the workers within each vCenter's
limit, claim a job exactly once, record its outcome, and reap jobs whose worker died.

Every state change goes through ``exports.lifecycle``; this module decides which one and when.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from exports.lifecycle import Transition, announce, apply, change_state
from exports.models import Job
from exports.output_ownership import output_in_use, output_path_holder
from exports.pipeline.output import discard_run

logger = logging.getLogger(__name__)

# Sent by name: the service does not import the task module that calls it.
RUN_TASK = "exports.tasks.run_export_job"
# A dispatched job not claimed after this long lost its message: dispatch it again.
REDISPATCH_AFTER = timedelta(seconds=60)
# The advisory lock key of the output-path check at claim time (any fixed 32-bit number).
OUTPUT_PATHS_LOCK = zlib.crc32(b"hypersdk:output-paths")


def _lock_vcenter(key: str) -> None:
    """Serialise claims per vCenter. SQLite already serialises writing transactions."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(key.encode())])


def _lock_output_paths() -> None:
    """Serialise the output-path check of claims, so two overlapping jobs never both start.

    On PostgreSQL one advisory lock for all claims (taken after the vCenter's, always in that
    order); SQLite's immediate transactions already run one at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [OUTPUT_PATHS_LOCK])


def _same_vcenter(job: Job) -> Q:
    return Q(vcenter_id=job.vcenter_id) if job.vcenter_id else Q(vcenter__isnull=True)


def claim_job(job_id: str, worker: str) -> Job | None:
    """Move a pending job to running for this worker, once, within its vCenter's limit.

    Returns None when the job is not pending any more (a duplicate delivery, a cancel), its
    vCenter is at the limit (the job stays pending, first in line), or a running job owns its
    output path (the job fails, naming that job).
    """
    with transaction.atomic():
        job = Job.objects.filter(id=job_id).first()
        if job is None or job.status != Job.Status.PENDING:
            return None
        _lock_vcenter(job.vcenter_key)
        running = Job.objects.filter(_same_vcenter(job), status=Job.Status.RUNNING).count()
        if running >= settings.HYPERSDK_MAX_CONCURRENT_EXPORTS:
            Job.objects.filter(id=job_id).update(dispatched_at=None)
            return None
        _lock_output_paths()
        now = timezone.now()
        holder = output_path_holder(job.output_path, exclude=job.id, statuses=(Job.Status.RUNNING,))
        if holder is not None:
            refused = f"output path refused: {output_in_use(holder)}"
            transition = Transition(
                source=(Job.Status.PENDING,),
                changes={"status": Job.Status.FAILED, "error": refused, "finished_at": now},
                message=refused,
                level="error",
            )
        else:
            transition = Transition(
                source=(Job.Status.PENDING,),
                changes={
                    "status": Job.Status.RUNNING,
                    "started_at": now,
                    "heartbeat_at": now,
                    "worker": worker,
                    "output_created": not Path(job.output_path).exists(),
                },
                message=f"started on {worker}",
            )
        if not apply(job_id, transition):
            return None
    # Announced once the claim committed: the locks above are not held while subscribers run.
    started = announce(job_id, transition)
    return started if holder is None else None


def dispatch_pending() -> int:
    """Send the oldest pending jobs to the workers, as many per vCenter as it has free slots."""
    now = timezone.now()
    limit = settings.HYPERSDK_MAX_CONCURRENT_EXPORTS
    busy: dict[Any, int] = defaultdict(int)
    for row in (
        Job.objects.filter(
            Q(status=Job.Status.RUNNING)
            | Q(status=Job.Status.PENDING, dispatched_at__gt=now - REDISPATCH_AFTER)
        )
        .values("vcenter_id")
        .annotate(n=Count("id"))
    ):
        busy[row["vcenter_id"]] = row["n"]
    waiting = Job.objects.filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=now - REDISPATCH_AFTER),
        status=Job.Status.PENDING,
    ).order_by("created_at", "id")
    # Imported here: Celery costs a CLI process that only reads jobs a few hundred ms.
    from hypersdk.celery import app as celery_app

    sent = 0
    for job_id, vcenter_id in waiting.values_list("id", "vcenter_id").iterator():
        if busy[vcenter_id] >= limit:
            continue
        if Job.objects.filter(id=job_id, status=Job.Status.PENDING).update(dispatched_at=now):
            busy[vcenter_id] += 1
            try:
                celery_app.send_task(RUN_TASK, args=[job_id])
            except Exception as exc:  # noqa: BLE001 - the job stays pending; the next pass resends it
                Job.objects.filter(id=job_id, status=Job.Status.PENDING).update(dispatched_at=None)
                logger.warning("cannot send %s to the workers (broker down?): %s", job_id, exc)
                break
            sent += 1
    return sent


def finish_job(job_id: str, status: str, *, result: dict | None = None, error: str = "") -> bool:
    """Record the outcome of a running job; False if it was no longer running (reaped)."""
    finished = Transition(
        source=(Job.Status.RUNNING,),
        changes={
            "status": status,
            "result": result,
            "error": error,
            "finished_at": timezone.now(),
            "cancel_requested": False,
        },
        message=error or f"{status}",
        level="error" if status == Job.Status.FAILED else "info",
    )
    return change_state(job_id, finished) is not None


def reap_lost_jobs() -> list[str]:
    """Fail running jobs whose worker stopped beating; clean what they left half-written."""
    cutoff = timezone.now() - timedelta(seconds=settings.HYPERSDK_WORKER_LOST_SECONDS)
    reaped = []
    for job in Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff):
        lost = Transition(
            source=(Job.Status.RUNNING,),
            where=Q(heartbeat_at__lt=cutoff),
            changes={"status": Job.Status.FAILED, "error": "worker lost", "finished_at": timezone.now()},
            message=f"worker lost ({job.worker}): no heartbeat since {job.heartbeat_at.isoformat()}",
            level="error",
        )
        if apply(job.id, lost):
            remove_partial_output(job)
            announce(job.id, lost)
            reaped.append(job.id)
    if reaped:
        dispatch_pending()
    return reaped


def remove_partial_output(job: Job) -> None:
    """Undo what a dead worker's run left, by the record the pipeline kept of what it created."""
    discard_run(Path(job.output_path), job.id)
