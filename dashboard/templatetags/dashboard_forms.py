"""Form rows with their label, help and inline errors wired for screen readers."""

from django import template
from django.template.loader import render_to_string

register = template.Library()


def _row(field, template_name: str) -> str:
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}-help")
    if field.errors:
        described.append(f"{field.auto_id}-error")
    attrs = {"aria-describedby": " ".join(described)} if described else {}
    if field.errors:
        attrs["aria-invalid"] = "true"
    return render_to_string(template_name, {"field": field, "widget": field.as_widget(attrs=attrs)})


@register.simple_tag
def field_row(field) -> str:
    return _row(field, "dashboard/partials/field_row.html")


@register.simple_tag
def checkbox_row(field) -> str:
    return _row(field, "dashboard/partials/checkbox_row.html")
