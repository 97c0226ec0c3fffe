"""Celery task beat runs every minute: a thin adapter over the schedules' tick (schedules.firing)."""

from __future__ import annotations

from celery import shared_task

from schedules import firing


@shared_task(name="schedules.tasks.fire_due_schedules", ignore_result=True)
def fire_due_schedules() -> list[str]:
    """The jobs started by the schedules whose slots were due."""
    return [run.job_id for run in firing.tick() if run.job_id]
