"""Sending due deliveries: claim rows by a conditional update, make each one's attempt, record
the outcome (``webhooks.retry_policy``).

The row, not the broker, is the truth: a duplicate message claims nothing and sends nothing, a
claimed row is left alone for its lease, and a periodic sweep sends whatever is well overdue (a
lost message, a worker that died).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from webhooks import conf, dispatch, retry_policy, sending
from webhooks.models import WebhookDelivery
from webhooks.signals import delivery_attempted

logger = logging.getLogger(__name__)

# How long a claimed delivery is left alone before the sweep may assume its worker died.
CLAIM_MARGIN = timedelta(seconds=60)
# The sweep leaves deliveries this overdue to their own message first.
SWEEP_GRACE = timedelta(seconds=60)
# Drainers claim this many deliveries at a time and hand over to a fresh task after this long.
DRAIN_BATCH = 10
DRAIN_BUDGET = 30.0
# A retry task may arrive a hair before its time (clocks, timer granularity).
EARLY_TOLERANCE = timedelta(seconds=1)


def deliver(delivery_id: str) -> str | None:
    """Make the delivery's next attempt if it is due and nobody else is making it.

    Returns its status afterwards, or None when it was not claimed (done, not due, deleted).
    """
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        id=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now + EARLY_TOLERANCE
    ).update(next_attempt_at=_lease(now, 1))
    if not claimed:
        return None
    return attempt_guarded(WebhookDelivery.objects.select_related("webhook").get(id=delivery_id))


def attempt_claimed(delivery: WebhookDelivery) -> str:
    webhook = delivery.webhook
    if not webhook.enabled and delivery.redelivery_of_id is None:
        _finish(delivery, error=f"not sent: webhook disabled ({webhook.disabled_reason or 'by an operator'})")
        return WebhookDelivery.Status.FAILED
    if delivery.event == "job.progress" and job_has_ended(delivery.job_id):
        # Queued while the job ran, due after it ended (a retry, a slow drainer): it would
        # arrive after job.completed and say "running". Not sent.
        _finish(delivery, error="not sent: the job had ended", status=WebhookDelivery.Status.SKIPPED)
        return WebhookDelivery.Status.SKIPPED
    attempt = sending.send(webhook, delivery.message_id, delivery.body.encode())
    status = retry_policy.record(delivery, attempt)
    delivery_attempted.send(sender=WebhookDelivery, status=status)
    return status


def attempt_guarded(delivery: WebhookDelivery) -> str:
    """``attempt_claimed`` for a drainer: a fault of ours in one delivery (a receiver's hostile
    header, a bug) is recorded as that delivery's failed attempt, so it is retried on the schedule
    instead of staying claimed, and the rest of the batch (and the drainer's slot) goes on."""
    try:
        return attempt_claimed(delivery)
    except Exception as exc:  # noqa: BLE001 - one delivery must never stop the others
        logger.exception("webhook delivery %s: internal error while sending", delivery.id)
        fault = sending.Attempt(
            status_code=None, duration_ms=0, error=f"internal error: {type(exc).__name__}"
        )
        try:
            return retry_policy.record(
                WebhookDelivery.objects.select_related("webhook").get(id=delivery.id), fault
            )
        except Exception:  # noqa: BLE001 - e.g. the row was deleted meanwhile; the sweep retries
            logger.exception("webhook delivery %s: could not record the internal error", delivery.id)
            return WebhookDelivery.Status.PENDING


def job_has_ended(job_id: str) -> bool:
    from exports.models import Job

    return bool(job_id) and Job.objects.filter(id=job_id, status__in=Job.FINISHED).exists()


def claim_due(limit: int, *, overdue: timedelta = timedelta(0)) -> list[WebhookDelivery]:
    """Claim up to ``limit`` due deliveries at once (other drainers skip the rows locked here)."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now - overdue)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        WebhookDelivery.objects.filter(
            id__in=ids, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now - overdue
        ).update(next_attempt_at=_lease(now, len(ids)))
    return list(
        WebhookDelivery.objects.select_related("webhook").filter(id__in=ids).order_by("next_attempt_at")
    )


def drain(slot: int, *, overdue: timedelta = timedelta(0), budget: float = DRAIN_BUDGET) -> int:
    """Send due deliveries until none is left (or the time budget is spent); returns how many.

    A drainer holds its slot key in Redis while it works. Before it stops it frees the slot and
    looks once more: a delivery committed meanwhile either found the slot taken (and is seen
    by that last look) or took the slot itself (and started a drainer). Nothing is stranded.
    """
    started, sent = time.monotonic(), 0
    while True:
        try:
            while time.monotonic() - started < budget:
                batch = claim_due(DRAIN_BATCH, overdue=overdue)
                if not batch:
                    break
                for delivery in batch:
                    attempt_guarded(delivery)
                    sent += 1
        except Exception:
            if slot >= 0:  # e.g. the database went away: free the slot so the next kick starts a drainer
                dispatch.redis_client().delete(dispatch.slot_key(slot))
            raise
        if slot < 0:  # the sweep: no slot to hand back
            return sent
        dispatch.redis_client().delete(dispatch.slot_key(slot))
        if time.monotonic() - started >= budget:
            dispatch.kick()  # let a fresh task go on, so one drainer never holds a worker for long
            return sent
        due = WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        ).exists()
        if not due or not dispatch.redis_client().set(
            dispatch.slot_key(slot), "1", nx=True, ex=dispatch.SLOT_TTL
        ):
            return sent


def sweep_due() -> int:
    """Send deliveries well past their time: a lost message, a drainer or worker that died."""
    return drain(-1, overdue=SWEEP_GRACE)


def _lease(now: datetime, count: int) -> datetime:
    """Claimed rows are left alone this long; past it, the sweep assumes their worker died."""
    return now + timedelta(seconds=conf.timeout() * count) + CLAIM_MARGIN


def _finish(delivery: WebhookDelivery, *, error: str, status: str = WebhookDelivery.Status.FAILED) -> None:
    delivery.status = status
    delivery.error = error
    delivery.next_attempt_at = None
    retry_policy.save(delivery)
