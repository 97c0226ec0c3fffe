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
import json
import logging
import os
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from hypersdk import outbound_http, redaction
from hypersdk.celery import app as celery_app
from webhooks import conf, formats, payloads, signing
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
FINISHED_JOB_STATES = {"completed", "failed", "cancelled"}
# Rate limited this many times in a row, a delivery gives up (429s do not count as failures).
MAX_RATE_LIMITED = 50

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
    """POST the body to the webhook once (signed when its format is ``standard``); never raises
    for the receiver's sake, and never puts the webhook's URL in an error."""
    try:
        secret = webhook.secret if webhook.signed else ""
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
        "Content-Type": "application/json" if webhook.signed else "application/json; charset=utf-8",
        "User-Agent": "HyperSDK-Webhooks/1",
        **(signing.signed_headers(secret, message_id, timestamp, body) if webhook.signed else {}),
    }
    attempt = _post(target_url, body, headers)
    # An error text (a redirect's Location, a library's message) or a receiver's answer echoing
    # what it got (Teams' "bad sig=...") must not show any secret of the URL or the headers.
    public = formats.PUBLIC_PATH_SEGMENTS.get(webhook.format)
    if public is None:  # stored as a chat URL (its host says so): its path is as secret
        public = formats.PUBLIC_PATH_SEGMENTS.get(formats.infer(webhook.target_url))
    shown_path = urlsplit(webhook.url).path
    if public is None and shown_path.endswith("/" + redaction.ELLIPSIS):  # masked once, stays masked
        public = len(shown_path.strip("/").split("/")) - 1

    def clean(text: str) -> str:
        for url in (webhook.target_url, target_url):
            text = redaction.scrub_url_secrets(text, url, webhook.url, public, webhook.target_headers)
        return text

    return replace(attempt, error=clean(attempt.error), response_excerpt=clean(attempt.response_excerpt))


def _post(target_url: str, body: bytes, headers: dict[str, str]) -> Attempt:
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
    text = response.body.decode("utf-8", errors="replace")
    excerpt = text[:EXCERPT_CHARS]
    error = ""
    if 300 <= response.status_code < 400:
        error = f"redirect to {redaction.mask_url(response.headers.get('location', '?'), 0)} not followed"
    elif not response.ok:
        error = f"HTTP {response.status_code}"
        # A 4xx says what is wrong with our request (Slack's "no_text"): worth showing.
        answer = text.strip().splitlines()[0][:200] if text.strip() else ""
        if answer and 400 <= response.status_code < 500:
            error += f": {answer}"
    return Attempt(
        status_code=response.status_code,
        duration_ms=round(response.elapsed * 1000, 1),
        error=error,
        response_excerpt=excerpt,
        retry_after=retry_after_of(response.status_code, response.headers, text),
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
    attempt = send(webhook, delivery.message_id, delivery.body.encode())
    status = record(delivery, attempt)
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
        fault = Attempt(status_code=None, duration_ms=0, error=f"internal error: {type(exc).__name__}")
        try:
            return record(WebhookDelivery.objects.select_related("webhook").get(id=delivery.id), fault)
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
                _redis().delete(_slot_key(slot))
            raise
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
    dead = dead_hook_reason(webhook.format, attempt)
    if dead:
        delivery.status = WebhookDelivery.Status.FAILED
        _save(delivery)
        disable(webhook.id, f"{dead} (delivery {delivery.id}, {now:%Y-%m-%d %H:%M} UTC)")
        return delivery.status
    if attempt.status_code == 429:
        return _rate_limited(delivery, attempt)
    reason = _count_failure(webhook, now)
    if reason:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = f"{attempt.error}; webhook disabled: {reason}"
        _save(delivery)
        disable(webhook.id, reason)
        return delivery.status
    delays = conf.retry_delays()
    failures = delivery.attempts - delivery.rate_limited  # a 429 is no failure
    if failures > len(delays):
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = f"{attempt.error}; gave up after {delivery.attempts} attempts"
        _save(delivery)
        return delivery.status
    wait = next_delay(delays[failures - 1], attempt.retry_after)
    delivery.next_attempt_at = now + wait
    _save(delivery)
    delivery_id = delivery.id
    transaction.on_commit(lambda: enqueue([delivery_id], countdown=wait.total_seconds()))
    return delivery.status


def dead_hook_reason(fmt: str, attempt: Attempt) -> str:
    """Why the receiver says this webhook will never work again, or "" (retry as usual).

    410 Gone from anyone; Slack's ``404 no_service`` (the hook was removed) and ``410
    channel_is_archived``; Discord's ``404`` with code 10015 ``Unknown Webhook``."""
    code, answer = attempt.status_code, attempt.response_excerpt.strip()
    if code == 410 and fmt == "slack" and answer.startswith("channel_is_archived"):
        return "Slack answered 410 channel_is_archived: the channel was archived"
    if code == 410:
        return "the receiver answered 410 Gone"
    if code == 404 and fmt == "slack" and answer.startswith("no_service"):
        return "Slack answered 404 no_service: the webhook was removed"
    if code == 404 and fmt == "discord":
        try:
            document = json.loads(answer)
        except ValueError:
            document = None
        if isinstance(document, dict) and (
            document.get("code") == 10015 or document.get("message") == "Unknown Webhook"
        ):
            return "Discord answered 404 Unknown Webhook: the webhook was deleted"
    return ""


def _rate_limited(delivery: WebhookDelivery, attempt: Attempt) -> str:
    """429: wait as long as the receiver asks (or our schedule), without counting a failure."""
    delivery.rate_limited += 1
    delays = conf.retry_delays()
    if delivery.rate_limited > MAX_RATE_LIMITED:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = f"{attempt.error}; gave up after {delivery.attempts} attempts"
        _save(delivery)
        return delivery.status
    failures = delivery.attempts - delivery.rate_limited
    base = delays[min(failures, len(delays) - 1)] if delays else 0
    wait = next_delay(base, attempt.retry_after)
    delivery.next_attempt_at = timezone.now() + wait
    delivery.error = f"{attempt.error} (rate limited: next attempt in {wait.total_seconds():.0f} s)"
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


def retry_after_of(status_code: int, headers: Any, text: str) -> timedelta | None:
    """How long the receiver asked us to wait: its ``Retry-After`` header, or for a 429 without
    one Discord's JSON ``retry_after`` (seconds, a float) or ``X-RateLimit-Reset-After``."""
    header = headers.get("retry-after")
    if header:
        return parse_retry_after(header)
    if status_code != 429:
        return None
    try:
        document = json.loads(text)
        seconds = float(document["retry_after"]) if isinstance(document, dict) else None
    except (ValueError, KeyError, TypeError):
        seconds = None
    if seconds is None:
        try:
            seconds = float(headers.get("x-ratelimit-reset-after") or "")
        except ValueError:
            return None
    if seconds != seconds or seconds < 0:  # NaN or negative: not a delay
        return None
    return timedelta(seconds=min(seconds, MAX_RETRY_AFTER.total_seconds()))


# RFC 9110 §5.6.7: IMF-fixdate is preferred; recipients must also take the obsolete RFC 850
# and ANSI C asctime() forms. All three mean UTC.
HTTP_DATE_FORMATS = (
    "%a, %d %b %Y %H:%M:%S GMT",  # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    "%A, %d-%b-%y %H:%M:%S GMT",  # RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    "%a %b %d %H:%M:%S %Y",  # asctime: Sun Nov  6 08:49:37 1994 (day padded with a space)
)
_unreadable_logged: set[str] = set()
# Longer delay-seconds (more than ~31,000 years) is no real request; int() of thousands of
# digits raises ValueError (Python's 4,300-digit limit), so such a value is "unreadable".
MAX_DELAY_DIGITS = 12


def parse_http_date(value: str) -> datetime | None:
    """An HTTP-date in any of its three forms, as an aware UTC datetime; None if it is none."""
    text = " ".join(value.split())  # asctime pads the day with a space: "Nov  6"
    for form in HTTP_DATE_FORMATS:
        try:
            moment = datetime.strptime(text, form)
        except ValueError:
            continue
        if form.startswith("%A"):
            # RFC 9110: a two-digit year more than 50 years in the future is in the past century.
            # (strptime's %y maps 69-99 to 19xx and 00-68 to 20xx.)
            current = timezone.now().year
            if moment.year > current + 50:
                moment = moment.replace(year=moment.year - 100)
        return moment.replace(tzinfo=UTC)
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """``Retry-After`` (RFC 9110 §10.2.3) as a delay: delay-seconds or an HTTP-date in any of its
    three forms; a date in the past means now. None when absent or unreadable (the caller then
    keeps its own schedule); an unreadable value is logged once per value."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= MAX_DELAY_DIGITS:
        return timedelta(seconds=min(int(value), int(MAX_RETRY_AFTER.total_seconds())))
    moment = parse_http_date(value)
    if moment is None:
        key = value[:100]  # a hostile header can be megabytes long: remember only its start
        if key not in _unreadable_logged and len(_unreadable_logged) < 1000:
            _unreadable_logged.add(key)
            logger.warning("unreadable Retry-After %r: the retry schedule applies", value[:100])
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


def _finish(delivery: WebhookDelivery, *, error: str, status: str = WebhookDelivery.Status.FAILED) -> None:
    delivery.status = status
    delivery.error = error
    delivery.next_attempt_at = None
    _save(delivery)


def _save(delivery: WebhookDelivery) -> None:
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
