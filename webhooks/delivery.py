"""Getting events to webhooks: one delivery row per event and webhook, sent by a Celery task,
retried with backoff, every attempt's outcome recorded on the row.

The event subscriber only writes rows and, once the transaction commits, makes sure a drainer
task is running (at most ``HYPERSDK_WEBHOOK_DRAINERS`` at once): a slow or dead receiver never
slows a job, and a burst of events costs a few Celery messages, not one each. A retry is one
message with a countdown. The row, not the broker, is the truth: deliveries are claimed by a
conditional update before they are sent (a duplicate message sends nothing), and a periodic
sweep sends whatever is well overdue (a lost message, a worker that died).
"""

from __future__ import annotations

import base64
import email.utils
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from hypersdk import outbound_http
from hypersdk.celery import app as celery_app
from webhooks import conf, payloads, signing
from webhooks.models import Webhook, WebhookDelivery
from webhooks.progress import ProgressThrottle
from webhooks.signals import delivery_attempted

logger = logging.getLogger(__name__)
# Sent by name (webhooks/tasks.py defines them over this module; CELERY_TASK_ROUTES queues them).
DELIVER_TASK = "webhooks.tasks.deliver_webhook"
DRAIN_TASK = "webhooks.tasks.drain_webhook_deliveries"

EXCERPT_CHARS = 1000
# How long a claimed delivery is left alone before the sweep may assume its worker died.
CLAIM_MARGIN = timedelta(seconds=60)
# The sweep leaves deliveries this overdue to their own message first.
SWEEP_GRACE = timedelta(seconds=60)
# Drainers claim this many deliveries at a time and hand over to a fresh task after this long.
DRAIN_BATCH = 10
DRAIN_BUDGET = 30.0
SLOT_TTL = 300  # a drainer that died frees its slot after this many seconds
# A retry task may arrive a hair before its time (clocks, timer granularity).
EARLY_TOLERANCE = timedelta(seconds=1)
MAX_RETRY_AFTER = timedelta(days=1)
FINISHED_JOB_EVENTS = {"job.completed", "job.failed", "job.cancelled"}

throttle = ProgressThrottle(conf.PROGRESS_INTERVAL)


@dataclass(frozen=True)
class Attempt:
    """How one POST went."""

    status_code: int | None
    duration_ms: float
    error: str = ""
    response_excerpt: str = ""
    retry_after: timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# ---- events in ------------------------------------------------------------------------------


def on_event(event: str, data: dict[str, Any]) -> list[str]:
    """The event-bus subscriber: a pending delivery for every enabled webhook that wants it."""
    job_id = data.get("job_id")
    if event == "job.progress" and not throttle.allow(str(job_id), float(data.get("percent") or 0)):
        return []
    if event in FINISHED_JOB_EVENTS and job_id:
        throttle.forget(job_id)
    webhooks = [webhook for webhook in Webhook.objects.filter(enabled=True) if webhook.wants(event)]
    if not webhooks:
        return []
    body = payloads.body(event, payloads.event_data(event, data))
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(webhook=webhook, event=event, body=body, created_at=now, next_attempt_at=now)
        for webhook in webhooks
    )
    transaction.on_commit(kick)
    return [delivery.id for delivery in deliveries]


def enqueue(delivery_ids: list[str], countdown: float = 0) -> None:
    """Hand deliveries to the workers; if the broker is down, the sweep sends them later."""
    for delivery_id in delivery_ids:
        try:
            celery_app.send_task(DELIVER_TASK, (delivery_id,), countdown=countdown or None)
        except Exception as exc:  # noqa: BLE001 - the row stays pending: the sweep resends it
            logger.warning("cannot enqueue webhook delivery %s (broker down?): %s", delivery_id, exc)
            return


# ---- sending --------------------------------------------------------------------------------


def _split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """``http://user:pass@host/x`` -> (``http://host/x``, an HTTP Basic Authorization header);
    a custom Authorization header of the webhook wins over it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return bare, {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


def send(webhook: Webhook, message_id: str, body: bytes) -> Attempt:
    """POST a signed body to the webhook once; never raises for the receiver's sake."""
    try:
        secret = webhook.secret
        target_url, target_headers = webhook.target_url, webhook.target_headers
    except ValueError as exc:  # HYPERSDK_SECRET_KEY changed: no signature can be made
        return Attempt(
            status_code=None, duration_ms=0.0, error=str(exc).replace("password", "signing secret")
        )
    target_url, basic_auth = _split_userinfo(target_url)
    if any(name.lower() == "authorization" for name in target_headers):
        basic_auth = {}
    timestamp = int(timezone.now().timestamp())
    headers = {
        **basic_auth,
        **target_headers,
        "Content-Type": "application/json",
        "User-Agent": "HyperSDK-Webhooks/1",
        **signing.signed_headers(secret, message_id, timestamp, body),
    }
    timeout = conf.timeout()
    started = time.monotonic()
    try:
        response = outbound_http.post(
            target_url,
            content=body,
            headers=headers,
            timeout=timeout,
            allowed_networks=conf.allowed_networks(),
        )
    except outbound_http.OutboundError as exc:
        elapsed = (time.monotonic() - started) * 1000
        return Attempt(status_code=None, duration_ms=round(elapsed, 1), error=str(exc))
    excerpt = response.body.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    error = ""
    if 300 <= response.status_code < 400:
        error = f"redirect to {response.headers.get('location', '?')} not followed"
    elif not response.ok:
        error = f"HTTP {response.status_code}"
    return Attempt(
        status_code=response.status_code,
        duration_ms=round(response.elapsed * 1000, 1),
        error=error,
        response_excerpt=excerpt,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


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
    return attempt_claimed(WebhookDelivery.objects.select_related("webhook").get(id=delivery_id))


def attempt_claimed(delivery: WebhookDelivery) -> str:
    webhook = delivery.webhook
    if not webhook.enabled and delivery.redelivery_of_id is None:
        _finish(delivery, error=f"not sent: webhook disabled ({webhook.disabled_reason or 'by an operator'})")
        return WebhookDelivery.Status.FAILED
    attempt = send(webhook, delivery.message_id, delivery.body.encode())
    status = record(delivery, attempt)
    delivery_attempted.send(sender=WebhookDelivery, status=status)
    return status


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
        while time.monotonic() - started < budget:
            batch = claim_due(DRAIN_BATCH, overdue=overdue)
            if not batch:
                break
            for delivery in batch:
                attempt_claimed(delivery)
                sent += 1
        if slot < 0:  # the sweep: no slot to hand back
            return sent
        _redis().delete(_slot_key(slot))
        if time.monotonic() - started >= budget:
            kick()  # let a fresh task go on, so one drainer never holds a worker for long
            return sent
        due = WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        ).exists()
        if not due or not _redis().set(_slot_key(slot), "1", nx=True, ex=SLOT_TTL):
            return sent


def kick() -> None:
    """Make sure a drainer will see every delivery committed so far; start one if a slot is free."""
    try:
        client = _redis()
        for slot in range(conf.drainers()):
            if client.set(_slot_key(slot), "1", nx=True, ex=SLOT_TTL):
                celery_app.send_task(DRAIN_TASK, (slot,))
                return
    except Exception as exc:  # noqa: BLE001 - the rows stay pending: the sweep sends them
        logger.warning("cannot start a webhook drainer (Redis down?): %s", exc)


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
        _save(delivery)
        if webhook.failure_streak or webhook.failing_since:
            Webhook.objects.filter(id=webhook.id).update(failure_streak=0, failing_since=None)
        return delivery.status
    if attempt.status_code == 410:
        delivery.status = WebhookDelivery.Status.FAILED
        _save(delivery)
        disable(
            webhook.id, f"the receiver answered 410 Gone (delivery {delivery.id}, {now:%Y-%m-%d %H:%M} UTC)"
        )
        return delivery.status
    reason = _count_failure(webhook, now)
    if reason:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = f"{attempt.error}; webhook disabled: {reason}"
        _save(delivery)
        disable(webhook.id, reason)
        return delivery.status
    delays = conf.retry_delays()
    if delivery.attempts > len(delays):
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = f"{attempt.error}; gave up after {delivery.attempts} attempts"
        _save(delivery)
        return delivery.status
    wait = next_delay(delays[delivery.attempts - 1], attempt.retry_after)
    delivery.next_attempt_at = now + wait
    _save(delivery)
    delivery_id = delivery.id
    transaction.on_commit(lambda: enqueue([delivery_id], countdown=wait.total_seconds()))
    return delivery.status


def next_delay(base: float, retry_after: timedelta | None) -> timedelta:
    """The scheduled delay with ±20 % jitter, never sooner than the receiver's Retry-After."""
    wait = timedelta(seconds=base * random.uniform(0.8, 1.2))
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return wait


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(timedelta(0), moment - (now or timezone.now()))


def disable(webhook_id: str, reason: str) -> bool:
    disabled = Webhook.objects.filter(id=webhook_id, enabled=True).update(
        enabled=False, disabled_reason=reason[:512]
    )
    if disabled:
        logger.warning("webhook %s disabled: %s", webhook_id, reason)
    return bool(disabled)


def sweep_due() -> int:
    """Send deliveries well past their time: a lost message, a drainer or worker that died."""
    return drain(-1, overdue=SWEEP_GRACE)


def _count_failure(webhook: Webhook, now: datetime) -> str:
    """Add a failure to the webhook's streak; the reason to disable it, if the streak is too long."""
    Webhook.objects.filter(id=webhook.id).update(
        failure_streak=F("failure_streak") + 1, failing_since=Coalesce(F("failing_since"), now)
    )
    streak, since = Webhook.objects.filter(id=webhook.id).values_list("failure_streak", "failing_since").get()
    if streak >= conf.disable_after_failures():
        return f"{streak} consecutive failed deliveries"
    if since is not None and now - since >= conf.disable_after():
        return f"every delivery failed since {since:%Y-%m-%d %H:%M} UTC"
    return ""


def _lease(now: datetime, count: int) -> datetime:
    """Claimed rows are left alone this long; past it, the sweep assumes their worker died."""
    return now + timedelta(seconds=conf.timeout() * count) + CLAIM_MARGIN


def _slot_key(slot: int) -> str:
    """Per database: daemons (or test sessions) sharing a Redis keep their drainers apart."""
    return f"hypersdk:webhooks:{settings.DATABASES['default']['NAME']}:drainer:{slot}"


_redis_clients: dict[tuple[int, str], redis.Redis] = {}


def _redis() -> redis.Redis:
    key = (os.getpid(), settings.REDIS_URL)
    if key not in _redis_clients:
        _redis_clients[key] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5
        )
    return _redis_clients[key]


def _finish(delivery: WebhookDelivery, *, error: str) -> None:
    delivery.status = WebhookDelivery.Status.FAILED
    delivery.error = error
    delivery.next_attempt_at = None
    _save(delivery)


def _save(delivery: WebhookDelivery) -> None:
    delivery.save(
        update_fields=[
            "status",
            "attempts",
            "status_code",
            "response_excerpt",
            "error",
            "duration_ms",
            "last_attempt_at",
            "next_attempt_at",
        ]
    )
