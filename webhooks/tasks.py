"""Celery tasks: thin adapters over webhooks.drain; they take plain ids.

They run on the ``webhooks`` queue (``CELERY_TASK_ROUTES``), consumed by a worker of its own,
so a receiver that hangs holds a webhook process for its timeout and never an export slot.

Retries are not Celery's: the delivery row holds the attempt count and the next attempt time
(backoff, jitter, Retry-After), and a failed attempt enqueues its retry with a countdown — so a
lost message costs nothing but a sweep interval.
"""

from __future__ import annotations

from celery import shared_task

from webhooks import drain


@shared_task(name="webhooks.tasks.deliver_webhook", ignore_result=True, acks_late=False, max_retries=0)
def deliver_webhook(delivery_id: str) -> str | None:
    return drain.deliver(delivery_id)


@shared_task(name="webhooks.tasks.drain_webhook_deliveries", ignore_result=True)
def drain_webhook_deliveries(slot: int) -> int:
    return drain.drain(slot)


@shared_task(name="webhooks.tasks.sweep_webhook_deliveries", ignore_result=True)
def sweep_webhook_deliveries() -> int:
    return drain.sweep_due()
