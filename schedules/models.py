"""Cron schedules of export jobs. One beat tick fires them (``schedules.firing.tick``) from the
slots ``schedules.cron`` computes — the same slots NEXT RUN shows."""

from __future__ import annotations

import re
import secrets
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

from exports.models import Job
from schedules.limits import MAX_RETENTION


def new_schedule_id() -> str:
    return f"sched-{secrets.token_urlsafe(6)}"


MAX_NAME_LENGTH = 128
# A name is a label people read in tables, logs and webhooks: any visible text, but no control,
# format (zero-width, bidi override), surrogate, private-use or unassigned characters, nor line
# or paragraph separators. It never becomes a path: see Schedule.run_directory_name.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_SLUG_LENGTH = 40


def check_schedule_name(name: str) -> None:
    """Raise ValidationError if ``name`` (already stripped) cannot label a schedule."""
    if not name:
        raise ValidationError("a name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"at most {MAX_NAME_LENGTH} characters")
    bad = next((char for char in name if unicodedata.category(char) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise ValidationError(
            f"must not hold control or invisible characters (found U+{ord(bad):04X}): tabs, "
            "line breaks and the like are refused"
        )


def _pass_marker(local_slot) -> str:
    """``+0200`` / ``+0100`` (the UTC offset) for a wall time an autumn shift repeats, else ``""``:
    the two passes of the hour get two run directories, every other name stays as it was."""
    other = local_slot.replace(fold=1 - local_slot.fold)
    if other.utcoffset() == local_slot.utcoffset():
        return ""
    return f"{local_slot:%z}"


def name_slug(name: str) -> str:
    """The name's letters and digits in ASCII, dash-separated, at most 40 characters: e.g.
    ``daily-backup``; ``../../etc/x`` gives ``etc-x`` and a name of emoji gives ``""``."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:_SLUG_LENGTH].strip("-")


class Schedule(models.Model):
    class Overlap(models.TextChoices):
        SKIP = "skip", "skip a run while the previous one is still going"
        ALLOW = "allow", "always start a run"

    id = models.CharField(primary_key=True, max_length=32, default=new_schedule_id, editable=False)
    name = models.CharField(max_length=MAX_NAME_LENGTH, unique=True, validators=[check_schedule_name])
    cron = models.CharField(max_length=128, help_text="5 fields (minute hour day month weekday) or @daily")
    timezone = models.CharField(max_length=64, default=settings.TIME_ZONE)
    # The job each run submits: vm_path, output_path (the base directory), vcenter, format...
    job_template = models.JSONField(default=dict)
    enabled = models.BooleanField(default=True)
    overlap = models.CharField(max_length=8, choices=Overlap.choices, default=Overlap.SKIP)
    retention = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION)],
        help_text="keep the last N runs' output",
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    run_count = models.PositiveIntegerField(default=0)
    last_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The tick's cursor: slots at or before this instant are dealt with (run, skipped, missed, or
    # before the schedule existed, was enabled, or got its current expression and zone).
    fired_through = models.DateTimeField(default=now)
    created_at = models.DateTimeField(default=now)
    # Set when a run could not even start its job (its template no longer validates: a vCenter
    # deleted, export roots changed); cleared by the next run that starts one, or by an edit
    # that makes the template valid again.
    failure_reason = models.TextField(blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def failing(self) -> bool:
        return bool(self.failure_reason)

    def run_directory_name(self, local_slot) -> str:
        """``<slug>-<id>-<YYYYmmdd-HHMMSS>`` (``<id>-...`` when the name has no ASCII letters),
        with the UTC offset appended (``...-020000+0100``) when the wall time is repeated:
        the id keeps two schedules apart, the slug is for people; the name itself never
        reaches the file system. A slot that is not a whole minute (a trigger's: now) adds
        its microseconds, ``-<ffffff>``, as its run is unique: two triggers in one second get
        a directory each. A cron slot's name stays as it always was."""
        stem = "-".join(part for part in (name_slug(self.name), self.id) if part)
        whole_minute = local_slot.second == 0 and local_slot.microsecond == 0
        trigger = "" if whole_minute else f"-{local_slot:%f}"
        return f"{stem}-{local_slot:%Y%m%d-%H%M%S}{trigger}{_pass_marker(local_slot)}"

    def local_time(self, moment) -> str:
        """``2027-10-31 02:55 +0100`` (``-`` for None): a run time as people read it, in the
        schedule's zone with its offset, so the two passes of a repeated hour differ. (Django's
        ``|date`` leaves the offset out exactly for those.)"""
        from zoneinfo import ZoneInfo

        if moment is None:
            return "-"
        return f"{moment.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d %H:%M %z}"

    def in_own_zone(self, moment) -> str:
        """``2027-10-31 02:55 +0100 Europe/Berlin``, ``-`` for None (the admin's run times)."""
        return "-" if moment is None else f"{self.local_time(moment)} {self.timezone}"

    @property
    def next_run_local(self) -> str:
        return self.local_time(self.next_run_at)

    @property
    def last_run_local(self) -> str:
        return self.local_time(self.last_run_at)

    @property
    def cron_description(self) -> str:
        """The expression in words ("At 02:00 AM"); "" when it cannot be read."""
        from schedules import cron

        return cron.describe(self.cron)

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
        FAILED = "failed"  # no job: the template no longer validates (``error`` says why)
        MISSED = "missed"  # the daemon was down at the slot and it is past the grace period

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    slot = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedule_runs"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-slot"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="schedule_run_once_per_slot")
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id}@{self.slot.isoformat()}"
