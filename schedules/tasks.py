"""Celery task fired by beat at each cron slot: a thin adapter over the schedule service."""

from __future__ import annotations

from celery import shared_task

from schedules import service


@shared_task(name="schedules.tasks.fire_schedule", ignore_result=True)
def fire_schedule(schedule_id: str) -> str | None:
    run = service.fire(schedule_id)
    return run.job_id if run is not None else None
