"""The schedule service: create, change, enable, disable, delete, trigger — and fire, which
beat calls at each cron slot. API views, the CLIs, the admin and the task all call these."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from exports import jobs
from exports.models import Job
from exports.output_roots import default_output_path
from exports.pipeline.names import file_stem
from hypersdk.events import emit
from schedules import beat, cron
from schedules.models import Schedule, ScheduleRun
from schedules.spec import split

logger = logging.getLogger(__name__)


class ScheduleNotFound(LookupError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule not found: {schedule_id}")


def get_schedule(schedule_id: str) -> Schedule:
    try:
        return Schedule.objects.select_related("last_job").get(id=schedule_id)
    except Schedule.DoesNotExist:
        raise ScheduleNotFound(schedule_id) from None


def list_schedules():
    return Schedule.objects.select_related("last_job").order_by("name")


@transaction.atomic
def create_schedule(data: dict[str, Any]) -> Schedule:
    """``data`` as ScheduleSpecSerializer validated it."""
    own, template = split(data)
    schedule = Schedule.objects.create(job_template=template, **own)
    beat.sync(schedule)
    return schedule


@transaction.atomic
def update_schedule(schedule: Schedule, data: dict[str, Any]) -> Schedule:
    own, template = split(data)
    for name, value in own.items():
        setattr(schedule, name, value)
    schedule.job_template = {**schedule.job_template, **template}
    schedule.save()
    beat.sync(schedule)
    return schedule


def set_enabled(schedule_id: str, enabled: bool) -> Schedule:
    with transaction.atomic():
        schedule = get_schedule(schedule_id)
        schedule.enabled = enabled
        schedule.save(update_fields=["enabled"])
        beat.sync(schedule)
    return schedule


@transaction.atomic
def delete_schedule(schedule_id: str) -> None:
    schedule = get_schedule(schedule_id)
    beat.remove(schedule)
    schedule.delete()


def trigger(schedule_id: str) -> Job:
    """Run now, whatever the overlap policy (an operator asked), without moving the next run."""
    schedule = get_schedule(schedule_id)
    run = _run(schedule, timezone.now(), ScheduleRun.Outcome.TRIGGERED)
    assert run is not None and run.job is not None  # a triggered slot is unique to the microsecond
    return run.job


def fire(schedule_id: str, moment: datetime | None = None) -> ScheduleRun | None:
    """Beat's call at a cron slot. None when disabled, deleted, or the slot was already taken."""
    schedule = Schedule.objects.filter(id=schedule_id, enabled=True).first()
    if schedule is None:
        return None
    slot = cron.slot_at(schedule.cron, schedule.timezone, moment or timezone.now())
    return _run(schedule, slot, ScheduleRun.Outcome.STARTED)


def run_directory(schedule: Schedule, slot: datetime) -> str:
    """``<output>/<schedule name>-<YYYYmmdd-HHMMSS>``: runs never clobber each other.

    The name is cut like an export's file names, so a 128-character name still fits a file name.
    """
    local = slot.astimezone(cron.zone(schedule.timezone))
    name = f"{file_stem(schedule.name)}-{local:%Y%m%d-%H%M%S}"
    base = schedule.job_template.get("output_path")
    return os.path.join(base, name) if base else default_output_path(name)


def _run(schedule: Schedule, slot: datetime, outcome: str) -> ScheduleRun | None:
    with transaction.atomic():
        try:
            with transaction.atomic():
                run = ScheduleRun.objects.create(schedule=schedule, slot=slot, outcome=outcome)
        except IntegrityError:
            logger.info("schedule %s slot %s already ran", schedule.id, slot.isoformat())
            return None
        if outcome == ScheduleRun.Outcome.STARTED and schedule.overlap == Schedule.Overlap.SKIP:
            busy = Job.objects.filter(
                schedule_runs__schedule=schedule, status__in=(Job.Status.PENDING, Job.Status.RUNNING)
            ).first()
            if busy is not None:
                run.outcome = ScheduleRun.Outcome.SKIPPED
                run.save(update_fields=["outcome"])
                logger.warning(
                    "schedule %s skipped %s: %s is still %s", schedule.name, slot, busy.id, busy.status
                )
                return run
        spec = {**schedule.job_template, "output_path": run_directory(schedule, slot)}
        # A run into a directory an active job owns fails at once, naming that job.
        submitted = jobs.submit_jobs([spec], origin=Job.Origin.SCHEDULE, fail_occupied=True)
        if not submitted.accepted:
            # The template was valid when saved; a vCenter deleted since, say, makes it invalid now.
            raise ValueError(f"schedule {schedule.name}: its job is invalid: {submitted.errors[0]['errors']}")
        run.job_id = submitted.job_ids[0]
        run.save(update_fields=["job"])
        Schedule.objects.filter(id=schedule.id).update(
            last_run_at=timezone.now(), run_count=F("run_count") + 1, last_job_id=run.job_id
        )
        jobs.append_log(
            run.job_id, f"started by schedule {schedule.name} ({outcome}, slot {slot.isoformat()})"
        )
    emit(
        "schedule.triggered",
        {"schedule_id": schedule.id, "name": schedule.name, "slot": slot.isoformat(), "job_id": run.job_id},
    )
    if schedule.retention:
        apply_retention(schedule)
    return run


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
            and output.name.startswith(f"{file_stem(schedule.name)}-")
            and _inside_roots(output)
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
    return any(jobs.paths_overlap(other, path) for other in others.values_list("output_path", flat=True))


def _inside_roots(path: Path) -> bool:
    real = os.path.realpath(path)
    return any(
        os.path.commonpath([real, os.path.realpath(root)]) == os.path.realpath(root)
        for root in settings.HYPERSDK_EXPORT_ROOTS
    )
