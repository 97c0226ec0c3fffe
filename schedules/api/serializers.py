"""How schedules look on the wire: the job template flat beside the schedule's own fields."""

from __future__ import annotations

from rest_framework import serializers

from schedules import cron
from schedules.models import Schedule, ScheduleRun
from schedules.spec import TEMPLATE_FIELDS


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


class ScheduleSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    cron = serializers.CharField()
    cron_description = serializers.CharField()
    timezone = serializers.CharField()
    enabled = serializers.BooleanField()
    overlap = serializers.CharField()
    retention = serializers.IntegerField(allow_null=True)
    vm_path = serializers.CharField()
    output_path = serializers.CharField(allow_null=True)
    vcenter = serializers.CharField(allow_null=True)
    job_template = serializers.DictField()
    last_run_at = serializers.DateTimeField(allow_null=True)
    next_run_at = serializers.DateTimeField(allow_null=True, help_text="in the schedule's time zone")
    run_count = serializers.IntegerField()
    missed_count = serializers.IntegerField(
        help_text="slots recorded as missed (no tick within the grace period)"
    )
    last_missed_slot = serializers.DateTimeField(allow_null=True, help_text="in the schedule's time zone")
    last_job = serializers.CharField(allow_null=True)
    last_job_status = serializers.CharField(allow_null=True)
    failing = serializers.BooleanField(help_text="its last run could not start a job")
    failure_reason = serializers.CharField(allow_null=True, help_text="why, while failing")
    failing_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, schedule: Schedule) -> dict:
        template = schedule.job_template
        local = cron.zone(schedule.timezone)
        next_run = schedule.next_run_at
        if hasattr(schedule, "missed_count"):  # annotated by the service's queries
            missed_count, last_missed = schedule.missed_count, schedule.last_missed_slot
        else:
            missed = schedule.runs.filter(outcome=ScheduleRun.Outcome.MISSED)
            missed_count, last_missed = missed.count(), missed.values_list("slot", flat=True).first()
        return {
            "id": schedule.id,
            "name": schedule.name,
            "cron": schedule.cron,
            "cron_description": cron.describe(schedule.cron),
            "timezone": schedule.timezone,
            "enabled": schedule.enabled,
            "overlap": schedule.overlap,
            "retention": schedule.retention,
            "vm_path": template.get("vm_path"),
            "output_path": template.get("output_path"),
            "vcenter": template.get("vcenter"),
            "job_template": {name: template[name] for name in TEMPLATE_FIELDS if name in template},
            "last_run_at": _iso(schedule.last_run_at.astimezone(local) if schedule.last_run_at else None),
            "next_run_at": _iso(next_run),
            "run_count": schedule.run_count,
            "missed_count": missed_count,
            "last_missed_slot": _iso(last_missed.astimezone(local) if last_missed else None),
            "last_job": schedule.last_job_id,
            "last_job_status": schedule.last_job.status if schedule.last_job_id else None,
            "failing": schedule.failing,
            "failure_reason": schedule.failure_reason or None,
            "failing_since": _iso(schedule.failing_since),
            "created_at": _iso(schedule.created_at),
        }
