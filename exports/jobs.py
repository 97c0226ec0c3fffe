"""The job service: submit, query, get, logs, cancel — and the scheduling rules behind them
(concurrency per vCenter, claiming a job exactly once, reaping jobs whose worker died).

API views, the CLIs, the admin and Celery tasks all call these functions; none of them
touches job state on its own.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from exports.job_spec import ENGINE_OPTIONS, validate_specs
from exports.lifecycle import Transition, announce, apply, change_state
from exports.lifecycle import append_log as append_log  # the job service's, for its callers
from exports.models import Job, JobLog
from exports.output_roots import default_output_path, default_output_root
from exports.pipeline.names import file_stem
from exports.pipeline.output import discard_run
from hypersdk.celery import app as celery_app
from hypersdk.lib.errors import ConflictError, NotFoundError
from hypersdk.lib.events import emit

logger = logging.getLogger(__name__)

# Sent by name: the service does not import the task module that calls it.
RUN_TASK = "exports.tasks.run_export_job"
# A dispatched job not claimed after this long lost its message: dispatch it again.
REDISPATCH_AFTER = timedelta(seconds=60)
# The advisory lock key of the output-path check at claim time (any fixed 32-bit number).
OUTPUT_PATHS_LOCK = zlib.crc32(b"hypersdk:output-paths")
# The most log lines one ``tail`` asks for (the API's and the CLIs' bound).
MAX_TAIL = 1_000_000


class JobNotFound(NotFoundError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job not found: {job_id}")
        self.job_id = job_id


class JobAlreadyFinished(ConflictError):
    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} already {job.status}")
        self.job = job


@dataclass
class SubmitResult:
    job_ids: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.job_ids)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_ids": self.job_ids,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "errors": self.errors,
        }


def submit_jobs(
    specs: list[Any], *, origin: str = Job.Origin.API, fail_occupied: bool = False
) -> SubmitResult:
    """Validate each spec; create the valid ones as pending jobs and dispatch them.

    A spec whose output path an active job owns (the same path, inside it, or around it) is
    refused with an ``output_path`` error naming that job; with ``fail_occupied`` (a schedule's
    run, which no client is there to read a 400) it becomes a job that failed at once, saying why.
    """
    valid, errors = validate_specs(specs)
    result = SubmitResult(errors=errors)
    now = timezone.now()
    jobs, refused = [], []
    if valid:
        # One query for every active job's path, and one index for this batch: a check per spec
        # costs its path's depth, not a query plus a scan of the batch.
        active = ActiveOutputs(_active_jobs())
        batch = ActiveOutputs()
        default_root = None if all(spec.get("output_path") for spec in valid) else default_output_root()
    for spec in valid:
        job = Job(vm_path=spec["vm_path"], vcenter=spec["vcenter"], origin=origin, created_at=now)
        vm_name = spec["vm_path"].rsplit("/", 1)[-1]
        # The VM's name cut like the export's own file names: 80 characters can be 320 bytes.
        stem = file_stem(vm_name)
        job.output_path = spec.get("output_path") or default_output_path(
            f"{stem}-{job.id}", root=default_root
        )
        job.options = {name: spec[name] for name in ENGINE_OPTIONS if name in spec}
        holder = active.holder(job.output_path) or batch.holder(job.output_path)
        if holder is None:
            jobs.append(job)
            batch.add(job)
        elif fail_occupied:
            job.status, job.finished_at = Job.Status.FAILED, now
            job.error = f"output path refused: {output_in_use(holder)}"
            refused.append(job)
        else:
            result.errors.append({"index": spec["index"], "errors": {"output_path": [output_in_use(holder)]}})
    result.errors.sort(key=lambda error: error["index"])
    if not jobs and not refused:
        return result
    with transaction.atomic():
        Job.objects.bulk_create([*jobs, *refused])
        JobLog.objects.bulk_create(
            JobLog(job_id=job.id, at=now, message=f"submitted ({origin}): {job.vm_path} -> {job.output_path}")
            for job in [*jobs, *refused]
        )
        JobLog.objects.bulk_create(
            JobLog(job_id=job.id, at=now, level="error", message=job.error) for job in refused
        )
        transaction.on_commit(dispatch_pending)
        for job in refused:
            transaction.on_commit(lambda job=job: emit("job.failed", job.as_event()))
    result.job_ids = [job.id for job in [*jobs, *refused]]
    return result


def paths_overlap(a: str, b: str) -> bool:
    """Whether one output path is the other, or inside it."""
    first, second = PurePosixPath(a), PurePosixPath(b)
    return first == second or first.is_relative_to(second) or second.is_relative_to(first)


class ActiveOutputs:
    """Output paths of jobs, indexed to find the first job added whose path is a given path,
    inside it, or around it in O(depth of the path) (the test ``paths_overlap`` makes, exact
    and case-sensitive).
    """

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        # path -> (order added, job) of the first job added whose path it is / is around.
        self._at: dict[str, tuple[int, Job]] = {}
        self._around: dict[str, tuple[int, Job]] = {}
        self._added = 0
        for job in jobs:
            self.add(job)

    def add(self, job: Job) -> None:
        path = PurePosixPath(job.output_path)
        entry = (self._added, job)
        self._added += 1
        self._at.setdefault(str(path), entry)
        for parent in path.parents:
            self._around.setdefault(str(parent), entry)

    def holder(self, path: str) -> Job | None:
        """The first job added whose output path is ``path``, inside it, or contains it."""
        cleaned = PurePosixPath(path)
        found = [self._at.get(str(cleaned)), self._around.get(str(cleaned))]
        found += [self._at.get(str(parent)) for parent in cleaned.parents]
        entries = [entry for entry in found if entry is not None]
        return min(entries, key=lambda entry: entry[0])[1] if entries else None


def _active_jobs(*, exclude: str | None = None, statuses: tuple[str, ...] = Job.ACTIVE) -> QuerySet[Job]:
    jobs = Job.objects.filter(status__in=statuses)
    if exclude:
        jobs = jobs.exclude(id=exclude)
    return jobs.order_by("created_at", "id").only("id", "status", "vm_path", "output_path")


def output_path_holder(
    path: str, *, exclude: str | None = None, statuses: tuple[str, ...] = Job.ACTIVE
) -> Job | None:
    """The oldest job in ``statuses`` whose output path is ``path``, inside it, or contains it."""
    cleaned = str(PurePosixPath(path))
    ancestors = [str(parent) for parent in PurePosixPath(cleaned).parents]
    candidates = _active_jobs(exclude=exclude, statuses=statuses).filter(
        Q(output_path=cleaned)
        | Q(output_path__startswith=cleaned.rstrip("/") + "/")
        | Q(output_path__in=ancestors),
    )
    # startswith is case-insensitive on SQLite: the exact test is made here.
    for job in candidates:
        if paths_overlap(job.output_path, cleaned):
            return job
    return None


def output_in_use(holder: Job) -> str:
    """The one-line reason a path is refused because ``holder`` owns it."""
    return (
        f"in use by job {holder.id} ({holder.status}, {holder.vm_path} -> {holder.output_path}): "
        "a job owns its output directory, and what is inside or around it, until it ends"
    )


def query_jobs(
    *, status: str | None = None, job_id: str | None = None, vm: str | None = None
) -> QuerySet[Job]:
    jobs = Job.objects.select_related("vcenter")
    if status and status != "all":
        jobs = jobs.filter(status=status)
    if job_id:
        jobs = jobs.filter(id=job_id)
    if vm:
        jobs = jobs.filter(vm_path__icontains=vm)
    return jobs.order_by("-created_at", "-id")


def get_job(job_id: str) -> Job:
    try:
        return Job.objects.select_related("vcenter").get(id=job_id)
    except Job.DoesNotExist:
        raise JobNotFound(job_id) from None


def job_logs(job_id: str, *, tail: int | None = None, since: int | datetime | None = None) -> list[JobLog]:
    """A job's log lines in order: all, those after ``since`` (a log id or a time), or the last ``tail``."""
    get_job(job_id)
    entries = JobLog.objects.filter(job_id=job_id)
    if isinstance(since, datetime):
        entries = entries.filter(at__gt=since)
    elif since is not None:
        entries = entries.filter(id__gt=since)
    if tail is not None:
        return list(reversed(entries.order_by("-id")[:tail]))
    return list(entries.order_by("id"))


def cancel_job(job_id: str) -> Job:
    """A pending job is cancelled at once; a running one is asked to stop (its worker polls)."""
    job = get_job(job_id)
    reason = "cancelled before it started"
    cancel_pending = Transition(
        source=(Job.Status.PENDING,),
        changes={"status": Job.Status.CANCELLED, "finished_at": timezone.now(), "error": reason},
        message=reason,
    )
    ask_to_stop = Transition(
        source=(Job.Status.RUNNING,), changes={"cancel_requested": True}, message="cancel requested"
    )
    changed = change_state(job_id, cancel_pending) or change_state(job_id, ask_to_stop)
    if changed is None:
        raise JobAlreadyFinished(job)
    return changed


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


def counts_by_status(*, since: datetime | None = None) -> dict[str, int]:
    """``{status: number of jobs}`` for every status (0 when none), of all jobs or of those
    created at ``since`` or later; one query."""
    rows = Job.objects.all() if since is None else Job.objects.filter(created_at__gte=since)
    counts = dict.fromkeys(Job.Status.values, 0)
    for row in rows.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts
