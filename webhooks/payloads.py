"""What a webhook receives: ``{"event": ..., "timestamp": ..., "data": {...}}`` as exact bytes."""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

from exports.models import Job

PROGRESS_FIELDS = ("phase", "percent", "current_file", "bytes_done", "bytes_total", "rate_bps", "eta_seconds")


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
    """The ``data`` of an internal event as receivers see it."""
    if event == "schedule.triggered":
        return {
            "schedule": {"id": data.get("schedule_id"), "name": data.get("name")},
            "slot": data.get("slot"),
            "job_id": data.get("job_id"),
        }
    job = Job.objects.filter(id=data.get("job_id")).first()
    if job is None:  # deleted in between: send what the event said
        return dict(data)
    described = job_data(job)
    if event == "job.progress":
        described["progress"] = {name: data[name] for name in PROGRESS_FIELDS if name in data}
    return described


def job_data(job: Job) -> dict[str, Any]:
    """A job as every job.* payload describes it; never a credential."""
    result = job.result or {}
    return {
        "job_id": job.id,
        "name": result.get("vm_name") or job.vm_path.rstrip("/").rsplit("/", 1)[-1],
        "vm_path": job.vm_path,
        "output": job.output_path,
        "state": job.status,
        "progress": {
            "phase": job.phase,
            "percent": job.percent,
            "bytes_done": job.bytes_done,
            "bytes_total": job.bytes_total,
        },
        "error": job.error or None,
        "duration": job.duration_seconds,
        "files": result.get("files", []),
        "origin": job.origin,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
