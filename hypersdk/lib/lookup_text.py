"""Whether text from a request can match a row: asked before it reaches an ORM lookup."""

from __future__ import annotations

from typing import Any


def can_match(value: Any, max_length: int | None = None) -> bool:
    """False when ``value`` (a str) cannot equal a stored text value, so the lookup is a miss.

    PostgreSQL refuses a NUL character in a text parameter (psycopg raises DataError: a 500),
    and no column of ``max_length`` characters holds a longer value. Callers answer "not
    found" (404) instead of querying.
    """
    if not isinstance(value, str) or "\x00" in value:
        return False
    return max_length is None or len(value) <= max_length


def shown(value: Any, limit: int = 64) -> str:
    """``value`` as an error message may quote it: unprintable characters escaped (NUL as
    ``\\x00``), at most ``limit`` characters."""
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"
