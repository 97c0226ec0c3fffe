"""What a webhook receives: ``{"event": ..., "timestamp": ..., "data": {...}}`` as exact bytes."""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

# The event says what the API says (exports.models.Job.as_event); receivers were promised these
# three names instead (README, "Format standard"), so they keep them: renamed here, and only here.
RECEIVER_NAMES = {"output_path": "output", "status": "state", "duration_seconds": "duration"}


def body(event: str, data: dict[str, Any]) -> str:
    document = {"event": event, "timestamp": timezone.now().isoformat(), "data": data}
    return json.dumps(document, separators=(",", ":"), default=str)


def body_for(fmt: str, event: str, data: dict[str, Any]) -> str:
    """The body a webhook of format ``fmt`` is sent for an event with receiver-facing ``data``."""
    from webhooks import formats

    if fmt in formats.CHAT_FORMATS:
        return formats.body(fmt, event, data)
    return body(event, data)


def event_data(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of an internal event as receivers see it, from the event alone (no query).

    job.*: the job's event with the receivers' names, in the same order, and ``error`` null
    when there is none: ``{job_id, name, vm_path, output, state, progress, error, duration,
    files, origin, created_at, started_at, finished_at}``.
    """
    if event == "schedule.triggered":
        return {
            "schedule": {"id": data.get("schedule_id"), "name": data.get("name")},
            "slot": data.get("slot"),
            "job_id": data.get("job_id"),
        }
    described = {RECEIVER_NAMES.get(name, name): value for name, value in data.items()}
    if "error" in described:
        described["error"] = described["error"] or None
    return described
