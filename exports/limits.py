"""Bounds the API and the CLIs share, importable without Django (the CLIs' flags check them
before the ORM loads)."""

from __future__ import annotations

# The most log lines one ``tail`` asks for.
MAX_TAIL = 1_000_000
# The last page a list may ask for: a million pages of a thousand, beyond any table here, and a
# bound for the integer.
MAX_PAGE = 1_000_000
