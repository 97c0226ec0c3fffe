"""Sizes and durations in templates through the one formatter (hypersdk.lib.units): IEC units,
as the CLIs print them. ``{% load units %}{{ job.bytes_done|human_size }}``."""

from django import template

from hypersdk.lib import units

register = template.Library()


@register.filter
def human_size(nbytes) -> str:
    """Bytes (int, float or a numeric string) as ``1.5 GiB``; "" for no value."""
    if nbytes is None or nbytes == "":
        return ""
    try:
        return units.human_size(float(nbytes))
    except (TypeError, ValueError):
        return ""


@register.filter
def human_duration(seconds) -> str:
    """Seconds as ``3m 5s`` (``-`` for None)."""
    return units.human_duration(None if seconds in (None, "") else float(seconds))


@register.filter
def mib_size(mebibytes) -> str:
    """MiB (a VM's memory, as vSphere counts it) as ``4.0 GiB``; "" for no value."""
    if mebibytes is None or mebibytes == "":
        return ""
    try:
        return units.human_size(float(mebibytes) * (1 << 20))
    except (TypeError, ValueError):
        return ""
