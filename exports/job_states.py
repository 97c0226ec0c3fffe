"""A job's states by name, importable without Django: the CLIs build their flags from these
before (or without) loading the ORM. ``Job.Status`` holds the same values (a test keeps them
equal)."""

from __future__ import annotations

JOB_STATUSES = ("pending", "running", "completed", "failed", "cancelled")
# The states a job never leaves.
FINISHED_STATUSES = ("completed", "failed", "cancelled")
