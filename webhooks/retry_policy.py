"""What an attempt's outcome means for its delivery: delivered, retried later (backoff with
jitter, never sooner than Retry-After; a 429 is no failure), or given up — and when the
webhook itself is disabled (``webhooks.auto_disable``). Every outcome is stored on the row."""

from __future__ import annotations

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from webhooks import auto_disable, conf, dispatch
from webhooks.models import WebhookDelivery
from webhooks.retry_after import MAX_RETRY_AFTER
from webhooks.sending import Attempt

# Rate limited this many times in a row, a delivery gives up (429s do not count as failures).
MAX_RATE_LIMITED = 50


def record(delivery: WebhookDelivery, attempt: Attempt) -> str:
    """Store an attempt's outcome; schedule the retry, or give up and maybe disable the webhook."""
    now = timezone.now()
    webhook = delivery.webhook
    delivery.attempts += 1
    delivery.status_code = attempt.status_code
    delivery.response_excerpt = attempt.response_excerpt
    delivery.error = attempt.error
    delivery.duration_ms = attempt.duration_ms
    delivery.last_attempt_at = now
    delivery.next_attempt_at = None
    if attempt.ok:
        delivery.status = WebhookDelivery.Status.DELIVERED
        save(delivery)
        auto_disable.reset_streak(webhook)
        return delivery.status
    dead = auto_disable.dead_hook_reason(webhook.format, attempt)
    if dead:
        delivery.status = WebhookDelivery.Status.FAILED
        save(delivery)
        auto_disable.disable(webhook.id, f"{dead} (delivery {delivery.id}, {now:%Y-%m-%d %H:%M} UTC)")
        return delivery.status
    if attempt.status_code == 429:
        return _rate_limited(delivery, attempt)
    reason = auto_disable.count_failure(webhook, now)
    if reason:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = f"{attempt.error}; webhook disabled: {reason}"
        save(delivery)
        auto_disable.disable(webhook.id, reason)
        return delivery.status
    delays = conf.retry_delays()
    failures = delivery.attempts - delivery.rate_limited  # a 429 is no failure
    if failures > len(delays):
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = f"{attempt.error}; gave up after {delivery.attempts} attempts"
        save(delivery)
        return delivery.status
    wait = next_delay(delays[failures - 1], attempt.retry_after)
    delivery.next_attempt_at = now + wait
    save(delivery)
    delivery_id = delivery.id
    transaction.on_commit(lambda: dispatch.enqueue([delivery_id], countdown=wait.total_seconds()))
    return delivery.status


def _rate_limited(delivery: WebhookDelivery, attempt: Attempt) -> str:
    """429: wait as long as the receiver asks (or our schedule), without counting a failure."""
    delivery.rate_limited += 1
    delays = conf.retry_delays()
    if delivery.rate_limited > MAX_RATE_LIMITED:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = f"{attempt.error}; gave up after {delivery.attempts} attempts"
        save(delivery)
        return delivery.status
    failures = delivery.attempts - delivery.rate_limited
    base = delays[min(failures, len(delays) - 1)] if delays else 0
    wait = next_delay(base, attempt.retry_after)
    delivery.next_attempt_at = timezone.now() + wait
    delivery.error = f"{attempt.error} (rate limited: next attempt in {wait.total_seconds():.0f} s)"
    save(delivery)
    delivery_id = delivery.id
    transaction.on_commit(lambda: dispatch.enqueue([delivery_id], countdown=wait.total_seconds()))
    return delivery.status


def next_delay(base: float, retry_after: timedelta | None) -> timedelta:
    """The scheduled delay with ±20 % jitter, never sooner than the receiver's Retry-After."""
    wait = timedelta(seconds=base * random.uniform(0.8, 1.2))
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return wait


def save(delivery: WebhookDelivery) -> None:
    """Write only the fields an attempt changes."""
    delivery.save(
        update_fields=[
            "status",
            "attempts",
            "rate_limited",
            "status_code",
            "response_excerpt",
            "error",
            "duration_ms",
            "last_attempt_at",
            "next_attempt_at",
        ]
    )
