"""``human_size`` and ``human_duration`` as template filters: the dashboard reads sizes and
durations as the CLIs and logs do (``hypersdk/lib/units.py``)."""

from __future__ import annotations

from django import template

from hypersdk.lib import units

register = template.Library()


@register.filter
def human_size(nbytes: float | None) -> str:
    """``1536`` -> ``"1.5 KiB"``; None -> ``""``."""
    return "" if nbytes is None else units.human_size(nbytes)


@register.filter
def human_duration(seconds: float | None) -> str:
    """``65`` -> ``"1m 5s"``; None -> ``"-"``."""
    return units.human_duration(seconds)
