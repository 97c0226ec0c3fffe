"""Events in: one pending delivery row per event and enabled webhook that wants it.

The event subscriber only writes rows and, once the transaction commits, makes sure a drainer
is running (``webhooks.dispatch.kick``): a slow or dead receiver never slows a job, and a burst
of events costs a few Celery messages, not one each. Progress events are throttled per job.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from webhooks import conf, dispatch, payloads
from webhooks.models import Webhook, WebhookDelivery
from webhooks.progress import ProgressThrottle

FINISHED_JOB_EVENTS = {"job.completed", "job.failed", "job.cancelled"}
FINISHED_JOB_STATES = {"completed", "failed", "cancelled"}

throttle = ProgressThrottle(conf.PROGRESS_INTERVAL)


def on_event(event: str, data: dict[str, Any]) -> list[str]:
    """The event-bus subscriber: a pending delivery for every enabled webhook that wants it."""
    job_id = data.get("job_id")
    percent = (data.get("progress") or {}).get("percent") or 0
    if event == "job.progress" and not throttle.allow(str(job_id), float(percent)):
        return []
    if event in FINISHED_JOB_EVENTS and job_id:
        throttle.forget(job_id)
    webhooks = [webhook for webhook in Webhook.objects.filter(enabled=True) if webhook.wants(event)]
    if not webhooks:
        return []
    described = payloads.event_data(event, data)
    if event == "job.progress" and described.get("state") in FINISHED_JOB_STATES:
        return []  # a progress flushed after the job ended would contradict its end
    bodies = {
        fmt: payloads.body_for(fmt, event, described) for fmt in {webhook.format for webhook in webhooks}
    }
    now = timezone.now()
    about = str(job_id) if job_id and event.startswith("job.") else ""
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            webhook=webhook,
            event=event,
            job_id=about,
            body=bodies[webhook.format],
            created_at=now,
            next_attempt_at=now,
        )
        for webhook in webhooks
    )
    transaction.on_commit(dispatch.kick)
    return [delivery.id for delivery in deliveries]
