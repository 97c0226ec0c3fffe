"""What a schedule may be made of, validated the same way for the API, the CLIs and imports."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from exports.job_spec import (
    ENGINE_OPTIONS,
    JobSpecSerializer,
    check_default_output,
    check_option_requirements,
    check_schedulable,
)
from hypersdk.lib.serializers import StrictSerializer
from schedules import cron
from schedules.models import MAX_NAME_LENGTH, MAX_RETENTION, Schedule, check_schedule_name

TEMPLATE_FIELDS = ("vm_path", "output_path", "vcenter", *ENGINE_OPTIONS)


class ScheduleSpecSerializer(StrictSerializer):
    """Flat on the wire: the job template's fields sit beside the schedule's own."""

    name = serializers.CharField(
        max_length=MAX_NAME_LENGTH,
        help_text="a label: visible text, no control or invisible characters; never a path",
    )
    cron = serializers.CharField(
        max_length=128, help_text="5 fields (minute hour day month weekday) or @daily"
    )
    timezone = serializers.CharField(max_length=64, default=settings.TIME_ZONE)
    enabled = serializers.BooleanField(default=True)
    overlap = serializers.ChoiceField(choices=Schedule.Overlap.choices, default=Schedule.Overlap.SKIP)
    retention = serializers.IntegerField(
        min_value=1, max_value=MAX_RETENTION, required=False, allow_null=True, default=None
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in JobSpecSerializer().get_fields().items():
            self.fields[name] = field

    def validate_name(self, value: str) -> str:
        value = value.strip()
        try:
            check_schedule_name(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        taken = Schedule.objects.filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(id=self.instance.id)
        if taken.exists():
            raise serializers.ValidationError(f"a schedule named {value!r} already exists")
        return value

    def validate_timezone(self, value: str) -> str:
        try:
            cron.zone(value)
        except cron.InvalidCron as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tz_name = attrs.get("timezone") or (self.instance.timezone if self.instance else settings.TIME_ZONE)
        if "cron" in attrs:
            try:
                attrs["cron"] = cron.validate(attrs["cron"], tz_name)
            except cron.InvalidCron as exc:
                raise serializers.ValidationError({"cron": [str(exc)]}) from None
        # The template as it will be saved (a partial change keeps the rest), judged whole: a
        # change that turns "convert" off refuses a kept "libvirt", as a new schedule would.
        template = {**(self.instance.job_template if self.instance else {}), **attrs}
        check_schedulable(template)
        check_option_requirements(template, surface=self.context.get("surface", "schedule"))
        saved = self.instance.job_template.get("output_path") if self.instance else None
        if not (attrs.get("output_path") or saved):
            check_default_output()  # its runs go under the default root: refuse now, not at 2 am
        return attrs

    def validate_vm_path(self, value: str) -> str:
        return JobSpecSerializer().validate_vm_path(value)

    def validate_output_path(self, value: str) -> str:
        return JobSpecSerializer().validate_output_path(value)

    def validate_hyper2kvm_path(self, value: str) -> str:
        return JobSpecSerializer().validate_hyper2kvm_path(value)


def split(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validated data → (schedule fields, job template as JSON-able values)."""
    template = {}
    for name in TEMPLATE_FIELDS:
        if name in data:
            value = data[name]
            template[name] = value.name if name == "vcenter" and value is not None else value
    own = {name: value for name, value in data.items() if name not in TEMPLATE_FIELDS}
    return own, template
