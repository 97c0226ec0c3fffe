"""Keep django-celery-beat's PeriodicTask in step with each Schedule.

Beat fires from PeriodicTask + CrontabSchedule; saving them through the ORM bumps
django-celery-beat's change marker, so a running beat picks changes up without a restart.
"""

from __future__ import annotations

import json

from django_celery_beat.models import CrontabSchedule, PeriodicTask

from schedules import cron
from schedules.models import Schedule

FIRE_TASK = "schedules.tasks.fire_schedule"


def sync(schedule: Schedule) -> PeriodicTask:
    minute, hour, day_of_month, month_of_year, day_of_week = cron.expand(schedule.cron).split(" ")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=schedule.timezone,
    )
    task = schedule.periodic_task or PeriodicTask(name=f"hypersdk schedule {schedule.id}", task=FIRE_TASK)
    task.crontab = crontab
    task.args = json.dumps([schedule.id])
    task.enabled = schedule.enabled
    task.description = f"HyperSDK schedule {schedule.name!r}: edit it through HyperSDK, not here"
    task.save()
    if schedule.periodic_task_id != task.id:
        schedule.periodic_task = task
        Schedule.objects.filter(id=schedule.id).update(periodic_task=task)
    return task


def remove(schedule: Schedule) -> None:
    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(id=schedule.periodic_task_id).delete()
