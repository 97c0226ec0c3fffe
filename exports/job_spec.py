"""What a client may ask of a job, validated the same way for the API, the CLIs and schedules."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from exports.converters import ConverterNotAllowed, check_converter
from exports.models import VCenter
from exports.output_roots import OutputOutsideRoots, default_output_root, resolve_output_path
from exports.pipeline.options import ENGINE_OPTIONS, OPTIONS, InvalidOptions, Option, check_requirements
from hypersdk.lib.serializers import LookupSlugRelatedField, StrictSerializer
from inventory.paths import split_path

__all__ = ["ENGINE_OPTIONS", "JobSpecSerializer", "StrictSerializer", "validate_specs"]


def option_field(option: Option) -> serializers.Field:
    """The job spec's field for an export option, in the API's units (exports.pipeline.options)."""
    # An option stored only when given has no default here: absent, the row leaves it out.
    kwargs: dict[str, Any] = (
        {"required": False} if option.stored_when_given else {"default": option.api_default}
    )
    if option.api_help:
        kwargs["help_text"] = option.api_help
    if option.kind == "switch":
        return serializers.BooleanField(**kwargs)
    if option.kind == "choice":
        return serializers.ChoiceField(choices=option.values, **kwargs)
    if option.kind == "count":
        return serializers.IntegerField(min_value=option.low, max_value=option.high, **kwargs)
    if option.kind == "duration":
        return serializers.IntegerField(min_value=1, max_value=option.api_high, **kwargs)
    if option.kind == "text" and option.parse is not None:
        return ParsedTextField(option.parse, max_length=option.max_length, allow_blank=True, **kwargs)
    return serializers.CharField(max_length=option.max_length, allow_blank=True, **kwargs)


class ParsedTextField(serializers.CharField):
    """A text option checked by its declaration's ``parse``, as a direct export checks it: its
    ValueError is this field's error; kept as given (the parse decides what spaces mean)."""

    def __init__(self, parse: Callable[[str], str], **kwargs: Any) -> None:
        self.parse = parse
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not value:
            return value
        try:
            return self.parse(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class JobSpecSerializer(StrictSerializer):
    # Kept as given (no trimming): a vCenter name may begin or end with a space, and
    # "/dc/vm/prod/web01 " names another VM than "/dc/vm/prod/web01".
    vm_path = serializers.CharField(
        max_length=1024, trim_whitespace=False, help_text="inventory path, e.g. /dc/vm/prod/web01"
    )
    output_path = serializers.CharField(
        max_length=4096,
        required=False,
        help_text="inside an export root; default <data dir>/exports/<vm>-<job id> when that is inside "
        "one, else <first existing export root>/<vm>-<job id>",
    )
    vcenter = LookupSlugRelatedField(
        slug_field="name", queryset=VCenter.objects.all(), required=False, allow_null=True, default=None
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # The export options' fields come from their declarations, after the job's own.
        return {**super().get_fields(), **{option.name: option_field(option) for option in OPTIONS}}

    def validate_vm_path(self, value: str) -> str:
        if any(unicodedata.category(char) == "Cc" for char in value):
            raise serializers.ValidationError("must not hold control characters")
        parts = split_path(value)  # spaces kept: they are part of the names
        if len(parts) < 2:
            raise serializers.ValidationError("give the VM's inventory path, e.g. /dc/vm/prod/web01")
        return "/" + "/".join(parts)

    def validate_output_path(self, value: str) -> str:
        try:
            return str(resolve_output_path(value))
        except OutputOutsideRoots as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Worded for the door the job came through (context "surface": a job's origin).
        surface = self.context.get("surface", "api")
        if surface == "schedule":  # a schedule's run: what no schedule may carry stops it too
            check_schedulable(attrs)
        check_option_requirements(attrs, surface=surface)
        if not attrs.get("output_path"):
            # A batch passes its own check, made once for all its specs.
            self.context.get("check_default_output", check_default_output)()
        return attrs

    def validate_hyper2kvm_path(self, value: str) -> str:
        # The worker runs this binary as the daemon's user: only one the administrator chose.
        try:
            return check_converter(value)
        except ConverterNotAllowed as exc:
            raise serializers.ValidationError(str(exc)) from None


def check_option_requirements(values: dict[str, Any], *, surface: str) -> None:
    """``check_requirements`` (``-define`` needs ``-libvirt``, which needs ``-convert``) as a
    serializer's error on the option's field."""
    try:
        check_requirements(values, surface=surface)
    except InvalidOptions as exc:
        raise serializers.ValidationError({exc.field or "non_field_errors": [str(exc)]}) from None


# Why a schedule may not carry an export option (Option.schedulable).
UNSCHEDULABLE = {
    "define_uri": "a schedule cannot define the domain: each run would meet the domain the last one "
    "defined (and retention removes old runs' disks under it); define one run's <vm>.xml by hand "
    "with virsh define",
}


def check_schedulable(values: dict[str, Any]) -> None:
    """A serializers.ValidationError on the first option a schedule may not carry that ``values``
    give (a schedule's spec, or the job one of its runs would submit)."""
    for option in OPTIONS:
        if not option.schedulable and option.given(values.get(option.name, option.default)):
            raise serializers.ValidationError({option.name: [UNSCHEDULABLE[option.name]]})


def check_default_output() -> None:
    """Refuse a request without output_path, at submit, when no default lies inside a root."""
    try:
        default_output_root()
    except OutputOutsideRoots as exc:
        raise serializers.ValidationError({"output_path": [str(exc)]}) from None


def validate_specs(
    specs: list[Any], *, surface: str = "api"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split specs into (valid data, errors as ``{"index": i, "errors": {field: [...]}}``);
    ``surface``: the jobs' origin, whose words the errors use (cli, api, dashboard, schedule)."""
    valid, errors = [], []
    # One serializer validates every spec, as DRF's ListSerializer does with its child: building
    # one per spec (deep copies of every field) was most of a large batch's time.
    serializer = JobSpecSerializer(
        context={"check_default_output": _checked_once(check_default_output), "surface": surface}
    )
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict):
            errors.append({"index": index, "errors": {"non_field_errors": ["a job must be a JSON object"]}})
            continue
        try:
            valid.append({"index": index, **serializer.run_validation(spec)})
        except serializers.ValidationError as exc:
            errors.append({"index": index, "errors": exc.detail})
    return valid, errors


def _checked_once(check: Callable[[], None]) -> Callable[[], None]:
    """``check``, run on the first call only; later calls repeat its outcome (its error, if any)."""
    outcome: list[serializers.ValidationError | None] = []

    def once() -> None:
        if not outcome:
            try:
                check()
                outcome.append(None)
            except serializers.ValidationError as exc:
                outcome.append(exc)
        if outcome[0] is not None:
            raise serializers.ValidationError(outcome[0].detail)

    return once
