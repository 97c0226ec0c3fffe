"""Forms render the inputs and parse their types; what a job may be is JobSpecSerializer's call."""

from __future__ import annotations

from typing import Any

from django import forms

from exports.models import Job
from exports.pipeline.options import OPTIONS, InvalidOptions, Option, parse_duration

# The export options the converter form shows, each as its declaration says (the guide's labels).
FORM_OPTIONS = tuple(option for option in OPTIONS if option.form is not None)


def option_form_field(option: Option) -> forms.Field:
    """The converter form's field for an export option. Values are parsed here only as far as
    their type; the job spec's serializer judges them (its errors land on these fields)."""
    assert option.form is not None
    label, help_text = option.form.label, option.form.help
    if option.kind == "switch":
        return forms.BooleanField(label=label, required=False, help_text=help_text)
    if option.kind == "choice":
        return forms.ChoiceField(
            label=label, choices=option.choices, initial=option.api_default, widget=forms.RadioSelect
        )
    attrs: dict[str, Any] = {"placeholder": option.form.placeholder} if option.form.placeholder else {}
    initial = None
    if option.kind in ("count", "duration"):
        attrs["inputmode"] = "numeric"
        initial = str(option.api_default)
    kwargs: dict[str, Any] = {"option": option} if option.kind == "duration" else {}
    field = DurationField if option.kind == "duration" else forms.CharField
    return field(
        label=label,
        required=False,
        initial=initial,
        help_text=help_text,
        widget=forms.TextInput(attrs=attrs),
        **kwargs,
    )


class DurationField(forms.CharField):
    """A duration as the CLI's flag reads it (minutes, or 2h/90m/45s; ASCII digits), given to the
    job spec in its API unit; empty leaves the default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.option: Option = kwargs.pop("option")
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return ""
        try:
            return self.option.to_api(parse_duration(text, maximum=self.option.high))
        except InvalidOptions as exc:
            raise forms.ValidationError(str(exc)) from None


# A base class holding the option fields: Django's form metaclass collects them from here.
OptionFields = type(
    "OptionFields", (forms.Form,), {option.form.name: option_form_field(option) for option in FORM_OPTIONS}
)


class ConverterForm(OptionFields):  # type: ignore[valid-type, misc]
    # Step 1: export configuration (the options' own fields come from their declarations)
    vm_path = forms.CharField(
        label="VM Path",
        required=False,  # the job spec says what a VM path must be
        widget=forms.TextInput(attrs={"placeholder": "/datacenter/vm/production/web01", "required": True}),
    )
    output_dir = forms.CharField(
        label="Output Directory",
        required=False,
        help_text="Inside an export root; empty: <vm>-<job id> in the default export root.",
        widget=forms.TextInput(attrs={"placeholder": "/exports/web01"}),
    )
    stream_output = forms.BooleanField(
        label="Stream Output",
        required=False,
        initial=True,
        help_text="Stream conversion logs to the dashboard.",
    )


STATUS_CHOICES = [("", "any state"), *[(value, value) for value in Job.Status.values]]


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(label="State", choices=STATUS_CHOICES, required=False)
    vm = forms.CharField(label="VM", required=False, widget=forms.TextInput(attrs={"type": "search"}))
    created_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
