"""The schedule service: create, change, enable, disable, delete, trigger. API views, the CLIs,
the admin and the task all call these. Firing the due slots is ``schedules.firing``; removing old
runs' output, ``schedules.run_retention``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from exports import jobs
from exports.models import Job
from hypersdk.lib.errors import ConflictError, NotFoundError
from hypersdk.lib.lookup_text import can_match, shown
from schedules.firing import announce_run, job_spec, one_line, start_run
from schedules.models import Schedule, ScheduleRun
from schedules.run_retention import apply_retention as apply_retention
from schedules.spec import split


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
    if not can_match(schedule_id, Schedule._meta.pk.max_length):
        raise ScheduleNotFound(shown(schedule_id))
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
    _valid, errors = jobs.validate_specs(
        [job_spec(schedule, moment or timezone.now())], surface=Job.Origin.SCHEDULE
    )
    return one_line(errors[0]["errors"]) if errors else ""


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
        run = start_run(schedule, timezone.now(), ScheduleRun.Outcome.TRIGGERED)
    assert run is not None  # a triggered slot is unique to the microsecond
    if run.outcome == ScheduleRun.Outcome.FAILED:
        raise ScheduleCannotRun(schedule, run.error)
    announce_run(schedule, run)
    return run.job
