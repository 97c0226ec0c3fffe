"""The one way a job changes state: a conditional UPDATE, then the log line, the websocket
message and the lifecycle event, each from one description of the job (``Job.as_event``).

``change_state(job_id, Transition(...))`` is what claim, finish, cancel and the reaper call.
``apply`` and ``announce`` are its two halves, for a caller that must commit its own
transaction (the claim's locks) or act on the files (the reaper) in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from exports import live
from exports.models import Job, JobLog
from hypersdk.lib.events import emit

# The lifecycle event a change to each status emits (a job never returns to pending).
STATUS_EVENTS = {
    Job.Status.RUNNING: "job.started",
    Job.Status.COMPLETED: "job.completed",
    Job.Status.FAILED: "job.failed",
    Job.Status.CANCELLED: "job.cancelled",
}


@dataclass(frozen=True)
class Transition:
    """One change of a job's row, made only while the job is in one of ``source``.

    ``changes`` are the columns to set (``status`` among them for a state change); ``message``
    is the job log line saying why, at ``level``; ``where`` narrows the match further (the
    reaper: a heartbeat still too old). ``event`` defaults to the new status's.
    """

    source: tuple[str, ...]
    changes: dict[str, Any]
    message: str
    level: str = "info"
    where: Q = field(default_factory=Q)
    event: str | None = None

    @property
    def lifecycle_event(self) -> str | None:
        return self.event or STATUS_EVENTS.get(self.changes.get("status"))


def change_state(job_id: str, transition: Transition) -> Job | None:
    """Apply ``transition`` and announce it; None when the job was not in a source state (the
    row count said so: another worker, a cancel or the reaper got there first)."""
    if not apply(job_id, transition):
        return None
    return announce(job_id, transition)


def apply(job_id: str, transition: Transition) -> bool:
    """The conditional UPDATE alone; True when it changed the row."""
    rows = Job.objects.filter(transition.where, id=job_id, status__in=transition.source)
    return bool(rows.update(**transition.changes))


def announce(job_id: str, transition: Transition) -> Job | None:
    """After ``apply`` changed the row (and its transaction committed): the log line; the
    ``job.status`` websocket message and the lifecycle event when the status changed. The row is
    read once, here; every consumer gets the event built from it. Returns that job."""
    job = Job.objects.select_related("vcenter").filter(id=job_id).first()
    if job is None:  # deleted in between: nothing left to log or describe
        return None
    append_log(job_id, transition.message, transition.level)
    event = job.as_event()
    if "status" in transition.changes:
        live.publish_job(job_id, "job.status", status_message(event))
    if transition.lifecycle_event:
        emit(transition.lifecycle_event, event)
    return job


def status_message(event: dict[str, Any]) -> dict[str, Any]:
    """The ``job.status`` websocket message's data: ``{status, error, percent, phase}``."""
    progress = event["progress"]
    return {
        "status": event["status"],
        "error": event["error"],
        "percent": progress["percent"],
        "phase": progress["phase"],
    }


def append_log(job_id: str, message: str, level: str = "info") -> JobLog:
    """One line of the job's log, stored and sent to its websocket group."""
    entry = JobLog.objects.create(job_id=job_id, message=message, level=level)
    live.publish_job(
        job_id, "job.log", {"id": entry.id, "at": entry.at.isoformat(), "level": level, "message": message}
    )
    return entry
