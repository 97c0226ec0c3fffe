"""Schedules in the admin, with enable, disable and trigger actions. django-celery-beat's own
pages are removed: a schedule is edited in one place; beat only runs the minute tick."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django_celery_beat import models as beat_models

from exports.job_spec import UNSCHEDULABLE, JobSpecSerializer
from hypersdk.lib.admin_actions import JSON_AS_THE_API_PARSES, enable_disable_actions
from hypersdk.lib.errors import DomainError
from schedules import cron, service
from schedules.models import Schedule, ScheduleRun

for model in (
    beat_models.PeriodicTask,
    beat_models.CrontabSchedule,
    beat_models.IntervalSchedule,
    beat_models.SolarSchedule,
    beat_models.ClockedSchedule,
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class ScheduleRunInline(admin.TabularInline):
    model = ScheduleRun
    fields = ["slot", "outcome", "job", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    ordering = ["-slot"]


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["name", "cron", "timezone", "job_template", "enabled", "overlap", "retention"]

    def clean(self) -> dict:
        data = super().clean()
        try:
            cron.zone(data.get("timezone", ""))
        except cron.InvalidCron as exc:
            self.add_error("timezone", str(exc))
            return data
        try:
            data["cron"] = cron.validate(data.get("cron", ""), data["timezone"])
        except cron.InvalidCron as exc:
            self.add_error("cron", str(exc))
        template = data.get("job_template") or {}
        if not isinstance(template, dict):
            raise forms.ValidationError("job template: must be a JSON object")
        spec = JobSpecSerializer(data=template)
        problems = (
            [] if spec.is_valid() else [f"{field}: {_words(said)}" for field, said in spec.errors.items()]
        )
        problems += [f"{name}: {why}" for name, why in UNSCHEDULABLE.items() if template.get(name)]
        if problems:
            raise forms.ValidationError([f"job template: {problem}" for problem in problems])
        return data


def _words(said: object) -> str:
    """A serializer's messages for one field as plain sentences, not Python's repr of them."""
    if isinstance(said, dict):
        return "; ".join(f"{key}: {_words(value)}" for key, value in said.items())
    if isinstance(said, list):
        return " ".join(_words(message) for message in said)
    return str(said)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    formfield_overrides = JSON_AS_THE_API_PARSES
    list_display = [
        "name",
        "id",
        "cron",
        "description",
        "timezone",
        "enabled",
        "last_run",
        "next_run",
        "run_count",
        "failure_reason",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "id"]
    readonly_fields = [
        "id",
        "last_run",
        "next_run",
        "run_count",
        "last_job",
        "created_at",
        "failure_reason",
        "failing_since",
    ]
    inlines = [ScheduleRunInline]
    actions = [
        *enable_disable_actions(
            service.set_enabled,
            enable_label="Enable selected schedules",
            disable_label="Disable selected schedules",
        ),
        "trigger",
    ]

    @admin.display(description="schedule")
    def description(self, schedule: Schedule) -> str:
        return cron.describe(schedule.cron)

    @admin.display(description="next run")
    def next_run(self, schedule: Schedule) -> str:
        return schedule.in_own_zone(schedule.next_run_at)

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, schedule: Schedule) -> str:
        return schedule.in_own_zone(schedule.last_run_at)

    def save_model(self, request, obj: Schedule, form, change: bool) -> None:
        with transaction.atomic():
            service.recheck(obj)
            service.prepare_save(obj)
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj: Schedule) -> None:
        service.delete_schedule(obj.id)

    def delete_queryset(self, request, queryset) -> None:
        for schedule in queryset:
            service.delete_schedule(schedule.id)

    @admin.action(description="Trigger selected schedules now")
    def trigger(self, request, queryset) -> None:
        started = []
        for schedule in queryset:
            try:
                started.append(service.trigger(schedule.id).id)
            except DomainError as exc:  # cannot run now, or deleted meanwhile: a message, not a 500
                self.message_user(request, str(exc), messages.ERROR)
        if started:
            self.message_user(request, f"started {', '.join(started)}", messages.SUCCESS)
