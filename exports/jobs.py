"""The job service: submit, query, get, logs, cancel, counts. The worker side (dispatch,
claim, finish, reap) is ``exports.job_queue``; who owns an output path, ``exports.output_ownership``.

API views, the CLIs, the admin and Celery tasks all call these functions; none of them
touches job state on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from exports.job_queue import dispatch_pending
from exports.job_spec import ENGINE_OPTIONS, validate_specs
from exports.lifecycle import Transition, change_state
from exports.limits import MAX_TAIL as MAX_TAIL  # the service's bound, re-exported
from exports.models import Job, JobLog
from exports.output_ownership import ActiveOutputs, active_jobs, output_in_use
from exports.output_roots import default_output_path, default_output_root
from exports.pipeline.names import file_stem
from hypersdk.lib.errors import ConflictError, NotFoundError
from hypersdk.lib.events import emit
from hypersdk.lib.lookup_text import can_match, shown


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
    valid, errors = validate_specs(specs, surface=origin)
    result = SubmitResult(errors=errors)
    now = timezone.now()
    jobs, refused = [], []
    if valid:
        # One query for every active job's path, and one index for this batch: a check per spec
        # costs its path's depth, not a query plus a scan of the batch.
        active = ActiveOutputs(active_jobs())
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


def query_jobs(
    *,
    status: str | None = None,
    job_id: str | None = None,
    vm: str | None = None,
    id_prefix: str | None = None,
) -> QuerySet[Job]:
    """Jobs newest first; ``id_prefix``: those whose id starts with it (shell completion)."""
    jobs = Job.objects.select_related("vcenter")
    if not all(can_match(text) for text in (status, job_id, vm, id_prefix) if text):
        return jobs.none()
    if status and status != "all":
        jobs = jobs.filter(status=status)
    if job_id:
        jobs = jobs.filter(id=job_id)
    if vm:
        jobs = jobs.filter(vm_path__icontains=vm)
    if id_prefix:
        jobs = jobs.filter(id__startswith=id_prefix)
    return jobs.order_by("-created_at", "-id")


def get_job(job_id: str) -> Job:
    if not can_match(job_id, Job._meta.pk.max_length):
        raise JobNotFound(shown(job_id))
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


def counts_by_status(*, since: datetime | None = None) -> dict[str, int]:
    """``{status: number of jobs}`` for every status (0 when none), of all jobs or of those
    created at ``since`` or later; one query."""
    rows = Job.objects.all() if since is None else Job.objects.filter(created_at__gte=since)
    counts = dict.fromkeys(Job.Status.values, 0)
    for row in rows.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts
