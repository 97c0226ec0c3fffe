"""Cron schedules of export jobs. One beat tick fires them (``schedules.service.tick``) from the
slots ``schedules.cron`` computes — the same slots NEXT RUN shows."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.timezone import now

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
    # The tick's cursor: slots at or before this instant are dealt with (run, skipped, missed, or
    # before the schedule existed, was enabled, or got its current expression and zone).
    fired_through = models.DateTimeField(default=now)
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
        """NEXT RUN as shown everywhere: the next slot after now, None when disabled."""
        return self.next_run_after(now())

    def next_run_after(self, moment):
        """The first slot strictly after ``moment`` (in the schedule's zone) that the tick will fire."""
        from schedules import cron

        if not self.enabled:
            return None
        return cron.next_run(self.cron, self.timezone, max(moment, self.fired_through))


class ScheduleRun(models.Model):
    """One slot of a schedule. Unique per (schedule, slot): a second beat firing the same slot
    by mistake finds the row taken and creates no second job."""

    class Outcome(models.TextChoices):
        STARTED = "started"
        SKIPPED = "skipped"
        TRIGGERED = "triggered"
        MISSED = "missed"  # the daemon was down at the slot and it is past the grace period

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
