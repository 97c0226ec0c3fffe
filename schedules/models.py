"""Cron schedules of export jobs. django-celery-beat's PeriodicTask is what fires them."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.timezone import now
from django_celery_beat.models import PeriodicTask

from exports.models import Job


def new_schedule_id() -> str:
    return f"sched-{secrets.token_urlsafe(6)}"


class Schedule(models.Model):
    class Overlap(models.TextChoices):
        SKIP = "skip", "skip a run while the previous one is still going"
        ALLOW = "allow", "always start a run"

    id = models.CharField(primary_key=True, max_length=32, default=new_schedule_id, editable=False)
    name = models.CharField(max_length=128, unique=True)
    cron = models.CharField(max_length=128, help_text="5 fields (minute hour day month weekday) or @daily")
    timezone = models.CharField(max_length=64, default=settings.TIME_ZONE)
    # The job each run submits: vm_path, output_path (the base directory), vcenter, format...
    job_template = models.JSONField(default=dict)
    enabled = models.BooleanField(default=True)
    overlap = models.CharField(max_length=8, choices=Overlap.choices, default=Overlap.SKIP)
    retention = models.PositiveIntegerField(null=True, blank=True, help_text="keep the last N runs' output")
    last_run_at = models.DateTimeField(null=True, blank=True)
    run_count = models.PositiveIntegerField(default=0)
    last_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    periodic_task = models.OneToOneField(
        PeriodicTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="hypersdk_schedule"
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def vm_path(self) -> str:
        return self.job_template.get("vm_path", "")

    @property
    def next_run_at(self):
        from schedules import cron

        if not self.enabled:
            return None
        return cron.next_run(self.cron, self.timezone, now())


class ScheduleRun(models.Model):
    """One slot of a schedule. Unique per (schedule, slot): a second beat firing the same slot
    by mistake finds the row taken and creates no second job."""

    class Outcome(models.TextChoices):
        STARTED = "started"
        SKIPPED = "skipped"
        TRIGGERED = "triggered"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    slot = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedule_runs"
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-slot"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="schedule_run_once_per_slot")
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id}@{self.slot.isoformat()}"
