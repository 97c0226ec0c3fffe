"""Internal events: the one function every lifecycle event goes through.

``emit("job.completed", {...})`` calls each subscriber (webhook delivery subscribes); a
subscriber's failure is logged and never breaks the code that emitted the event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

EVENTS = (
    "job.started",
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.progress",
    "schedule.triggered",
)
Subscriber = Callable[[str, dict[str, Any]], None]
_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> Subscriber:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    return subscriber


def emit(event: str, data: dict[str, Any]) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    # job.progress comes twice a second per running job: not worth a line each at INFO.
    level = logging.DEBUG if event == "job.progress" else logging.INFO
    logger.log(level, "event %s %s", event, data.get("job_id") or data.get("schedule_id") or "")
    for subscriber in list(_subscribers):
        try:
            subscriber(event, data)
        except Exception:  # noqa: BLE001 - a subscriber must not break a job or a schedule
            logger.exception("event subscriber %r failed on %s", subscriber, event)
