"""The one progress publisher: typed messages ``{"type": ..., "data": ...}`` to a Channels
group per job, for websockets (dashboard, CLI watchers). Best effort: a missing or broken
channel layer never fails the export that publishes."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def job_group(job_id: str) -> str:
    return f"job.{job_id}"


JOBS_GROUP = "jobs"  # every job's status changes, for lists


def publish_job(job_id: str, message_type: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "hypersdk.message", "message": {"type": message_type, "job_id": job_id, "data": data}}
    try:
        async_to_sync(layer.group_send)(job_group(job_id), message)
        if message_type == "job.status":
            async_to_sync(layer.group_send)(JOBS_GROUP, message)
    except Exception as exc:  # noqa: BLE001 - live updates are a convenience, the DB is the truth
        logger.debug("live update for %s not sent: %s", job_id, exc)
