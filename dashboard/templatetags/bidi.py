"""``{{ text|isolate_bidi }}``: text from vCenter (VM, datastore, ISO and network names) inside
a sentence of ours, such as a preflight finding's reason, shown so that a directional control in
a name (U+202E RIGHT-TO-LEFT OVERRIDE ...) reorders nothing beyond the word that holds it.

The sentence is one string (inventory.findings.Finding), so the names in it cannot each be put
in a ``<bdi>`` by the template; every whitespace-separated word holding such a control is,
and a ``<bdi>`` ends every embedding, override and isolate begun inside it. The caller wraps
the whole in a ``<bdi>`` too, to keep it apart from what surrounds it."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Unicode's explicit directional formatting characters (UAX #9, 2.1-2.6) and its marks.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROLLED_WORD = re.compile(rf"\S*[{BIDI_CONTROLS}]\S*")


@register.filter
def isolate_bidi(text: object) -> SafeString:
    """``text`` HTML-escaped, each word holding a directional control in its own ``<bdi>``."""
    escaped = escape("" if text is None else str(text))  # escaping leaves the controls be
    return mark_safe(_CONTROLLED_WORD.sub(lambda word: f"<bdi>{word.group(0)}</bdi>", escaped))
