"""The schedule service: create, change, enable, disable, delete, trigger — and tick, which beat
calls every minute to fire the slots that are due. API views, the CLIs, the admin and the task
all call these."""

from __future__ import annotations

import logging
import os
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from exports import jobs
from exports.models import Job
from exports.output_ownership import paths_overlap
from exports.output_roots import default_output_path, inside_export_roots
from hypersdk.errors import ConflictError, NotFoundError
from hypersdk.events import emit
from schedules import cron
from schedules.models import Schedule, ScheduleRun
from schedules.spec import split

logger = logging.getLogger(__name__)


class ScheduleNotFound(NotFoundError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule not found: {schedule_id}")


class ScheduleCannotRun(ConflictError):
    """The schedule's job template no longer validates, so no job can be started. Every door
    (API 409, admin and dashboard messages, the CLIs' one-line error) shows ``str(exc)``."""

    def __init__(self, schedule: Schedule, reason: str) -> None:
        super().__init__(f"schedule {schedule.name} ({schedule.id}) cannot start its job: {reason}")
        self.schedule, self.reason = schedule, reason


def _with_run_counts():
    """Schedules with ``missed_count`` and ``last_missed_slot`` (slots recorded as missed)."""
    missed = Q(runs__outcome=ScheduleRun.Outcome.MISSED)
    return Schedule.objects.select_related("last_job").annotate(
        missed_count=Count("runs", filter=missed), last_missed_slot=Max("runs__slot", filter=missed)
    )


def get_schedule(schedule_id: str) -> Schedule:
    try:
        return _with_run_counts().get(id=schedule_id)
    except Schedule.DoesNotExist:
        raise ScheduleNotFound(schedule_id) from None


def list_schedules():
    return _with_run_counts().order_by("name")


@transaction.atomic
def create_schedule(data: dict[str, Any]) -> Schedule:
    """``data`` as ScheduleSpecSerializer validated it."""
    own, template = split(data)
    return Schedule.objects.create(job_template=template, fired_through=timezone.now(), **own)


@transaction.atomic
def update_schedule(schedule: Schedule, data: dict[str, Any]) -> Schedule:
    own, template = split(data)
    for name, value in own.items():
        setattr(schedule, name, value)
    schedule.job_template = {**schedule.job_template, **template}
    recheck(schedule)
    prepare_save(schedule)
    schedule.save()
    return schedule


def prepare_save(schedule: Schedule) -> None:
    """Before saving a changed ``schedule`` (in a transaction): lock its row, which waits for a
    tick firing it, so the tick never fires a slot of an expression it no longer has or after it
    was disabled; and move the tick's cursor. A new expression or zone, or enabling, starts the
    slots from now: the NEXT RUN shown is the next one that fires, and no slot from before is
    fired or counted missed. The tick's own counters are kept as the tick left them."""
    locked = Schedule.objects.select_for_update().filter(id=schedule.id).first()
    if locked is None:
        schedule.fired_through = timezone.now()
        return
    restart = (schedule.cron, schedule.timezone) != (locked.cron, locked.timezone) or (
        schedule.enabled and not locked.enabled
    )
    schedule.fired_through = timezone.now() if restart else locked.fired_through
    schedule.last_run_at, schedule.run_count = locked.last_run_at, locked.run_count
    schedule.last_job_id = locked.last_job_id


def set_enabled(schedule_id: str, enabled: bool) -> Schedule:
    with transaction.atomic():
        schedule = get_schedule(schedule_id)
        schedule.enabled = enabled
        recheck(schedule)
        prepare_save(schedule)
        schedule.save()
    return schedule


def template_problem(schedule: Schedule, moment: datetime | None = None) -> str:
    """Why the schedule's job could not be submitted now, in one line; "" when it could."""
    _valid, errors = jobs.validate_specs([job_spec(schedule, moment or timezone.now())])
    return _one_line(errors[0]["errors"]) if errors else ""


def recheck(schedule: Schedule) -> None:
    """After an edit: a schedule shown failing stays so only while its template is still bad."""
    if schedule.failure_reason:
        schedule.failure_reason = template_problem(schedule)
        schedule.failing_since = schedule.failing_since if schedule.failure_reason else None


@transaction.atomic
def delete_schedule(schedule_id: str) -> None:
    get_schedule(schedule_id).delete()


def trigger(schedule_id: str) -> Job:
    """Run now, whatever the overlap policy (an operator asked), without moving the next run.

    Raises ScheduleNotFound, or ScheduleCannotRun when its job template no longer validates
    (recorded as a failed run, as a firing would be)."""
    schedule = get_schedule(schedule_id)
    with transaction.atomic():
        run = _start(schedule, timezone.now(), ScheduleRun.Outcome.TRIGGERED)
    assert run is not None  # a triggered slot is unique to the microsecond
    if run.outcome == ScheduleRun.Outcome.FAILED:
        raise ScheduleCannotRun(schedule, run.error)
    _announce(schedule, run)
    return run.job


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
            runs.append(_start(schedule, latest, ScheduleRun.Outcome.STARTED))
        else:
            runs.append(_record_missed(schedule, latest))
    runs = [run for run in runs if run is not None]
    for run in runs:
        if run.outcome == ScheduleRun.Outcome.MISSED:
            logger.warning(
                "schedule %s missed its slot %s: no tick within the grace period", schedule.name, run.slot
            )
        elif run.job_id:
            _announce(schedule, run)
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


def _one_line(errors: dict[str, Any]) -> str:
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


def _start(schedule: Schedule, slot: datetime, outcome: str) -> ScheduleRun | None:
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
            return _record_failure(schedule, run, spec, _one_line(submitted.errors[0]["errors"]))
        run.job_id = submitted.job_ids[0]
        run.save(update_fields=["job"])
        Schedule.objects.filter(id=schedule.id).update(
            last_run_at=timezone.now(),
            run_count=F("run_count") + 1,
            last_job_id=run.job_id,
            failure_reason="",
            failing_since=None,
        )
        jobs.append_log(
            run.job_id, f"started by schedule {schedule.name} ({outcome}, slot {slot.isoformat()})"
        )
    return run


def _announce(schedule: Schedule, run: ScheduleRun) -> None:
    """After the run's transaction committed: the event, then retention."""
    slot = run.slot.astimezone(cron.zone(schedule.timezone))
    emit(
        "schedule.triggered",
        {"schedule_id": schedule.id, "name": schedule.name, "slot": slot.isoformat(), "job_id": run.job_id},
    )
    if schedule.retention:
        apply_retention(schedule)


def _record_failure(schedule: Schedule, run: ScheduleRun, spec: dict[str, Any], reason: str) -> ScheduleRun:
    """Inside _run's transaction: the run is kept as failed, the schedule marked failing."""
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
