"""Firing schedules: beat's tick every minute finds each schedule's due slots, starts the latest
(within the grace period), records the others as missed, and announces each run.
``schedules.service.trigger`` starts a run through the same ``start_run``."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from exports import jobs, lifecycle
from exports.models import Job
from exports.output_roots import default_output_path
from hypersdk.lib.events import emit
from schedules import cron
from schedules.models import Schedule, ScheduleRun
from schedules.run_retention import apply_retention

logger = logging.getLogger(__name__)


# Missed slots recorded per tick and schedule: a `* * * * *` schedule down for a month would
# otherwise write 43,200 rows. Older ones are not recorded.
MAX_MISSED_RECORDED = 100


def tick(moment: datetime | None = None) -> list[ScheduleRun]:
    """Beat's call every minute: for each enabled schedule, the slots in (its cursor, ``moment``]
    that ``schedules.cron`` gives. The latest one runs if it is at most
    HYPERSDK_SCHEDULE_GRACE_SECONDS old, every other one is recorded as ``missed``. Returns the
    runs created (started, skipped and missed), oldest slot first per schedule.
    """
    moment = moment or timezone.now()
    runs: list[ScheduleRun] = []
    enabled = Schedule.objects.filter(enabled=True, fired_through__lt=moment).values_list(
        "id", "cron", "timezone", "fired_through"
    )
    for schedule_id, expression, tz_name, fired_through in list(enabled):
        try:
            # One step of the engine, no lock or write, for the many schedules with nothing due.
            if cron.next_run(expression, tz_name, fired_through) > moment:
                continue
            runs.extend(fire_due(schedule_id, moment))
        except Exception:  # one schedule whose job cannot be built must not stop the others
            logger.exception("schedule %s: firing its due slots failed; the next tick retries", schedule_id)
    return runs


def fire_due(schedule_id: str, moment: datetime) -> list[ScheduleRun]:
    """Fire one schedule's due slots (see :func:`tick`). Safe to run twice at once: the row lock
    serialises the two, the cursor makes the second find nothing, and (schedule, slot) is unique."""
    grace = timedelta(seconds=settings.HYPERSDK_SCHEDULE_GRACE_SECONDS)
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update()
            .filter(id=schedule_id, enabled=True, fired_through__lt=moment)
            .first()
        )
        if schedule is None:
            return []
        due = cron.due_slots(
            schedule.cron, schedule.timezone, schedule.fired_through, moment, MAX_MISSED_RECORDED + 1
        )
        Schedule.objects.filter(id=schedule.id).update(fired_through=moment)
        if not due:
            return []
        *older, latest = due
        runs = [_record_missed(schedule, slot) for slot in older]
        if moment - latest <= grace:
            runs.append(start_run(schedule, latest, ScheduleRun.Outcome.STARTED))
        else:
            runs.append(_record_missed(schedule, latest))
    runs = [run for run in runs if run is not None]
    for run in runs:
        if run.outcome == ScheduleRun.Outcome.MISSED:
            logger.warning(
                "schedule %s missed its slot %s: no tick within the grace period", schedule.name, run.slot
            )
        elif run.job_id:
            announce_run(schedule, run)
    return runs


def run_directory(schedule: Schedule, slot: datetime) -> str:
    """``<output>/<name slug>-<schedule id>-<YYYYmmdd-HHMMSS>[-<microseconds>]``
    (Schedule.run_directory_name): runs never clobber each other,
    and whatever the name holds (``/``, ``..``, emoji), the run stays directly in ``<output>``."""
    base = schedule.job_template.get("output_path")
    name = schedule.run_directory_name(slot.astimezone(cron.zone(schedule.timezone)))
    return os.path.join(base, name) if base else default_output_path(name)


def job_spec(schedule: Schedule, slot: datetime) -> dict[str, Any]:
    """The job a run at ``slot`` submits: the template, writing to the run's own directory."""
    return {**schedule.job_template, "output_path": run_directory(schedule, slot)}


def one_line(errors: dict[str, Any]) -> str:
    """``{"vcenter": ["..."], ...}`` as ``vcenter: ...; ...``."""
    return "; ".join(
        f"{field}: {' '.join(str(message) for message in messages)}"
        if isinstance(messages, list)
        else f"{field}: {messages}"
        for field, messages in errors.items()
    )


def _record_missed(schedule: Schedule, slot: datetime) -> ScheduleRun | None:
    try:
        with transaction.atomic():
            return ScheduleRun.objects.create(
                schedule=schedule, slot=slot, outcome=ScheduleRun.Outcome.MISSED
            )
    except IntegrityError:
        return None


def start_run(schedule: Schedule, slot: datetime, outcome: str) -> ScheduleRun | None:
    """Claim the slot and submit its job, in the caller's transaction. None if already taken."""
    slot = slot.astimezone(cron.zone(schedule.timezone))
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
        spec = job_spec(schedule, slot)
        # A run into a directory an active job owns fails at once, naming that job.
        submitted = jobs.submit_jobs([spec], origin=Job.Origin.SCHEDULE, fail_occupied=True)
        if not submitted.accepted:
            # The template was valid when saved; a vCenter deleted since, say, makes it invalid
            # now. Recorded, shown (API, CLI, dashboard) and announced; never a worker traceback.
            return _record_failure(schedule, run, spec, one_line(submitted.errors[0]["errors"]))
        run.job_id = submitted.job_ids[0]
        run.save(update_fields=["job"])
        Schedule.objects.filter(id=schedule.id).update(
            last_run_at=timezone.now(),
            run_count=F("run_count") + 1,
            last_job_id=run.job_id,
            failure_reason="",
            failing_since=None,
        )
        lifecycle.append_log(
            run.job_id, f"started by schedule {schedule.name} ({outcome}, slot {slot.isoformat()})"
        )
    return run


def announce_run(schedule: Schedule, run: ScheduleRun) -> None:
    """After the run's transaction committed: the event, then retention."""
    slot = run.slot.astimezone(cron.zone(schedule.timezone))
    emit(
        "schedule.triggered",
        {"schedule_id": schedule.id, "name": schedule.name, "slot": slot.isoformat(), "job_id": run.job_id},
    )
    if schedule.retention:
        apply_retention(schedule)


def _record_failure(schedule: Schedule, run: ScheduleRun, spec: dict[str, Any], reason: str) -> ScheduleRun:
    """Inside start_run's transaction: the run is kept as failed, the schedule marked failing."""
    now = timezone.now()
    run.outcome, run.error = ScheduleRun.Outcome.FAILED, reason
    run.save(update_fields=["outcome", "error"])
    Schedule.objects.filter(id=schedule.id).update(
        last_run_at=now, failure_reason=reason, failing_since=Coalesce(F("failing_since"), now)
    )
    logger.warning("schedule %s (%s) cannot start its job: %s", schedule.name, schedule.id, reason)
    data = {
        "job_id": None,
        "schedule": {"id": schedule.id, "name": schedule.name},
        "schedule_id": schedule.id,
        "name": str(spec.get("vm_path", "")).rstrip("/").rsplit("/", 1)[-1],
        "vm_path": spec.get("vm_path"),
        "output_path": spec.get("output_path"),
        "status": Job.Status.FAILED,
        "error": f"schedule {schedule.name} cannot start its job: {reason}",
        "origin": Job.Origin.SCHEDULE,
        "slot": run.slot.isoformat(),
    }
    transaction.on_commit(lambda: emit("job.failed", data))
    return run
