"""A schedule's bounds, importable without Django (``hyperctl schedules`` checks its flags
before the ORM loads)."""

from __future__ import annotations

# Far more runs than anyone keeps, and well inside a 32-bit integer column.
MAX_RETENTION = 100_000
