"""Forms render the inputs and parse their types; what a job may be is JobSpecSerializer's call."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from exports.models import Job, VCenter
from exports.pipeline.options import OPTION, OPTIONS, InvalidOptions, Option, parse_duration
from schedules.models import Schedule
from webhooks import formats
from webhooks.models import ALL_EVENTS, DEFAULT_EVENTS, EVENTS

# The export options the converter form shows, each as its declaration says (the guide's labels).
FORM_OPTIONS = tuple(option for option in OPTIONS if option.form is not None)
FORM_NAME = {option.name: option.form.name for option in FORM_OPTIONS}  # type: ignore[union-attr]
# "Write libvirt domain" is ticked at first for the formats a KVM guest runs from; a VDI is
# VirtualBox's. static/dashboard/options.js ticks it again as the target changes.
LIBVIRT_BY_DEFAULT = ("qcow2", "raw")


def option_form_field(option: Option) -> forms.Field:
    """The converter form's field for an export option. Values are parsed here only as far as
    their type; the job spec's serializer judges them (its errors land on these fields)."""
    assert option.form is not None
    label, help_text = option.form.label, option.form.help
    needs = requires_attrs(option)
    if option.kind == "switch":
        return forms.BooleanField(
            label=label, required=False, help_text=help_text, widget=forms.CheckboxInput(attrs=needs)
        )
    if option.kind == "choice":
        return forms.ChoiceField(
            label=label,
            choices=option.choices,
            initial=option.api_default,
            # Disabled, so not sent, while a switch it needs is off: then it is its default.
            required=not option.requires,
            help_text=help_text,
            widget=forms.RadioSelect(attrs=needs),
        )
    attrs: dict[str, Any] = {"placeholder": option.form.placeholder} if option.form.placeholder else {}
    attrs.update(needs)
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


def requires_attrs(option: Option) -> dict[str, str]:
    """``data-requires``: the form fields of the switches ``option`` needs (Option.requires);
    static/dashboard/options.js disables its control while one of them is off or disabled."""
    names = [FORM_NAME.get(name, name) for name in option.requires]
    return {"data-requires": " ".join(names)} if names else {}


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


def option_values(data: dict[str, Any]) -> dict[str, Any]:
    """The option fields' cleaned data as job spec fields (API units). Empty text leaves the
    option out, so the job spec's default applies; "Compress" asks for an OVA (the guide:
    "Compress exported OVA").

    An option needing a switch that is off (Option.requires: "Write libvirt domain" needs
    "Auto-convert", its disk bus and network map need it) is sent as its default, whatever the
    form holds: the page's script disables such a control, so a browser sends nothing for it,
    and without the script the server reads the form the same way. So the converter's default
    tick of "Write libvirt domain" never fails an export without Auto-convert, and a schedule
    whose domain is switched off forgets its network map.
    """
    spec: dict[str, Any] = {"format": "ova"} if data.get("compress") else {}
    for option in FORM_OPTIONS:
        value = data[option.form.name]  # type: ignore[union-attr]
        if option.requires:
            # Declared after what it needs, so those are in ``spec`` already (or not in the form).
            wanted = all(spec.get(name) for name in option.requires)
            if not wanted or value in (None, ""):
                spec[option.name] = option.api_default
            else:
                spec[option.name] = value.strip() if isinstance(value, str) else value
        elif option.kind in ("switch", "choice"):
            spec[option.name] = value
        elif option.kind == "duration":
            if value != "":  # parsed by the form into the API's unit; empty leaves the default
                spec[option.name] = value
        elif value and value.strip():  # typed text: empty leaves the default to the job spec
            spec[option.name] = value.strip()
    return spec


def option_initial(template: dict[str, Any]) -> dict[str, Any]:
    """A stored job template's options as the option fields' initial values (the reverse of
    option_values; a duration in the API's unit is what its field reads)."""
    initial: dict[str, Any] = {}
    for option in FORM_OPTIONS:
        if option.name in template:
            value = template[option.name]
            initial[option.form.name] = "" if value is None else value  # type: ignore[union-attr]
    return initial


# A base class holding the option fields: Django's form metaclass collects them from here.
OptionFields = type(
    "OptionFields", (forms.Form,), {option.form.name: option_form_field(option) for option in FORM_OPTIONS}
)


class ConverterForm(OptionFields):  # type: ignore[valid-type, misc]
    # Step 1: export configuration (the options' own fields come from their declarations)
    vm_path = forms.CharField(
        label="VM Path",
        required=False,  # the job spec says what a VM path must be
        strip=False,  # a vCenter name may begin or end with a space: "web01 " is not web01
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
    # Shown when the admin has added vCenters; empty: the daemon's default.
    vcenter = forms.ChoiceField(label="vCenter", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = VCenter.objects.order_by("name").values_list("name", flat=True)
        self.fields["vcenter"].choices = [("", "the daemon's default"), *((name, name) for name in names)]
        libvirt, target = FORM_NAME["libvirt"], FORM_NAME["manifest_target"]
        # Ticked at first for a qcow2 or raw target (options.js follows the target's changes
        # until the box is ticked or unticked by hand); sent only with Auto-convert (option_values).
        chosen = self.initial.get(target, self.fields[target].initial)
        self.fields[libvirt].initial = chosen in LIBVIRT_BY_DEFAULT
        self.fields[libvirt].widget.attrs.update(
            {"data-default-for": " ".join(LIBVIRT_BY_DEFAULT), "data-default-from": target}
        )


STATUS_CHOICES = [("", "any state"), *[(value, value) for value in Job.Status.values]]


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(label="State", choices=STATUS_CHOICES, required=False)
    vm = forms.CharField(label="VM", required=False, widget=forms.TextInput(attrs={"type": "search"}))
    created_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))


class ScheduleForm(OptionFields):  # type: ignore[valid-type, misc]
    """A schedule and the job each run submits. Types only: ScheduleSpecSerializer (the API's
    rules) judges the values, and its errors land on these fields (schedule_pages.save)."""

    name = forms.CharField(label="Name", required=False, widget=forms.TextInput(attrs={"required": True}))
    cron = forms.CharField(
        label="Cron",
        required=False,
        help_text="5 fields (minute hour day month weekday), or @hourly, @daily, @weekly, @monthly.",
        widget=forms.TextInput(attrs={"placeholder": "0 2 * * *", "required": True, "spellcheck": "false"}),
    )
    timezone = forms.CharField(
        label="Time zone",
        required=False,
        help_text="An IANA name; the cron is read on this zone's wall clock.",
        widget=forms.TextInput(attrs={"placeholder": "Europe/Berlin", "spellcheck": "false"}),
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    overlap = forms.ChoiceField(
        label="While a run is still going",
        choices=Schedule.Overlap.choices,
        initial=Schedule.Overlap.SKIP,
        widget=forms.RadioSelect,
    )
    retention = forms.IntegerField(
        label="Keep the last N runs' output",
        required=False,
        help_text="Empty: keep every run's output.",
    )
    vm_path = forms.CharField(
        label="VM Path",
        required=False,
        strip=False,  # a vCenter name may begin or end with a space: "web01 " is not web01
        widget=forms.TextInput(attrs={"placeholder": "/datacenter/vm/production/web01", "required": True}),
    )
    output_path = forms.CharField(
        label="Output Directory",
        required=False,
        help_text="The base directory inside an export root: each run writes a directory in it. "
        "Empty: the default export root.",
        widget=forms.TextInput(attrs={"placeholder": "/exports/nightly"}),
    )
    vcenter = forms.ChoiceField(label="vCenter", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = VCenter.objects.order_by("name").values_list("name", flat=True)
        self.fields["vcenter"].choices = [("", "the daemon's default"), *((name, name) for name in names)]
        self.fields["timezone"].initial = settings.TIME_ZONE

    def spec(self) -> dict[str, Any]:
        """The cleaned data as ScheduleSpecSerializer reads it (the API's flat body)."""
        data = self.cleaned_data
        spec = {name: data[name] for name in ("name", "cron", "enabled", "overlap", "retention", "vm_path")}
        spec["timezone"] = data["timezone"].strip() or settings.TIME_ZONE
        if data["output_path"].strip():
            spec["output_path"] = data["output_path"].strip()
        spec["vcenter"] = data["vcenter"] or None
        # What a schedule may not carry (-define) is not on its form: a crafted POST's is dropped.
        schedulable = {name: value for name, value in option_values(data).items() if OPTION[name].schedulable}
        return {**spec, **schedulable}

    def option_fields(self) -> list[tuple[str, forms.BoundField]]:
        """(kind, bound field) of each declared export option, in declaration order: the
        template lays them out by kind, so a new option shows here with no template change."""
        return [
            (option.kind, self[option.form.name])  # type: ignore[union-attr]
            for option in FORM_OPTIONS
            if option.schedulable
        ]

    @classmethod
    def initial_of(cls, schedule: Schedule) -> dict[str, Any]:
        template = schedule.job_template
        return {
            "name": schedule.name,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "enabled": schedule.enabled,
            "overlap": schedule.overlap,
            "retention": schedule.retention,
            "vm_path": template.get("vm_path", ""),
            "output_path": template.get("output_path") or "",
            "vcenter": template.get("vcenter") or "",
            **option_initial(template),
        }


# Where ScheduleSpecSerializer's fields show up in the schedule form (its errors go there).
SCHEDULE_FIELD_OF = {
    **{name: name for name in ScheduleForm.base_fields},
    **{option.name: option.form.name for option in FORM_OPTIONS if option.form is not None},
}


class WebhookForm(forms.Form):
    """A new webhook. Types only: webhooks.validation (the API's rules) judges the values."""

    url = forms.CharField(
        label="URL",
        required=False,
        help_text="Where events are POSTed: http(s), a public address (HYPERSDK_WEBHOOK_ALLOWED_NETWORKS).",
        widget=forms.TextInput(
            attrs={"placeholder": "https://hooks.example.com/hypersdk", "required": True, "type": "url"}
        ),
    )
    format = forms.ChoiceField(
        label="Format",
        required=False,
        choices=[("", "inferred from the URL"), *((name, name) for name in formats.FORMATS)],
        help_text="standard: the signed Standard Webhooks envelope; slack, discord, teams: a chat message.",
    )
    events = forms.MultipleChoiceField(
        label="Events",
        required=False,
        choices=[(ALL_EVENTS, "every event (*)"), *((name, name) for name in EVENTS)],
        widget=forms.CheckboxSelectMultiple,
        help_text=f"None ticked: {', '.join(DEFAULT_EVENTS)}.",
    )
