"""The VM-path field with the inventory's typeahead: ``{% load vm_picker %}{% vm_path_field
form.vm_path %}`` (the converter and the schedule form). The suggestions are asked of the
vCenter the form's ``#id_vcenter`` names, when it has one."""

from django import template
from django.template.loader import render_to_string
from django.urls import reverse

register = template.Library()

SUGGEST_DELAY_MS = 250  # debounce: one question per pause in typing, not per key


@register.simple_tag
def vm_path_field(field) -> str:
    listbox = f"{field.auto_id}-listbox"
    status = f"{field.auto_id}-status"
    described = [f"{field.auto_id}-hint"]
    if field.help_text:
        described.append(f"{field.auto_id}-help")
    if field.errors:
        described.append(f"{field.auto_id}-error")
    attrs = {
        "role": "combobox",
        "aria-autocomplete": "list",
        "aria-expanded": "false",
        "aria-controls": listbox,
        "aria-describedby": " ".join(described),
        "autocomplete": "off",
        "spellcheck": "false",
        "data-combobox": "",
        "data-combobox-status": status,
        "hx-get": reverse("dashboard:inventory-suggest"),
        # Not "changed": typing empties the list (combobox.js), so the text typed back to what
        # was last asked must be asked again.
        "hx-trigger": f"input delay:{SUGGEST_DELAY_MS}ms",
        "hx-target": f"#{listbox}",
        "hx-swap": "innerHTML",
        "hx-include": "#id_vcenter",
        "hx-sync": "this:replace",
        # Not the form's: a suggestion never disables Start nor goes to the form's target.
        "hx-disabled-elt": "unset",
    }
    if field.errors:
        attrs["aria-invalid"] = "true"
    return render_to_string(
        "dashboard/partials/vm_path_field.html", {"field": field, "widget": field.as_widget(attrs=attrs)}
    )


@register.filter
def export_refusal(vm_path: str) -> str:
    """Why a job spec would refuse ``vm_path`` (exports.job_spec's own check, e.g. a line break
    in a VM's name: "must not hold control characters"), or "" when it would take it. The
    converter's single-line field would drop such a character and then name another VM."""
    from rest_framework import serializers

    from exports.job_spec import JobSpecSerializer

    spec = JobSpecSerializer()
    try:
        spec.validate_vm_path(spec.fields["vm_path"].run_validation(vm_path))
    except serializers.ValidationError as exc:
        return " ".join(str(message) for message in exc.detail)
    return ""
