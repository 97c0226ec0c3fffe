"""The webhook service: list, add, delete, test, deliveries, redeliver, import.

The API views, the admin, ``hyperctl webhooks`` and ``import_config`` all call these. A webhook
is addressed by its id (``wh-...``) or by its 0-based index in ``list_webhooks()`` (creation
order, as the earlier Go daemon numbered them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from hypersdk.lib.errors import NotFoundError
from hypersdk.lib.lookup_text import can_match, shown
from webhooks import dispatch, formats, payloads, sending
from webhooks.models import (
    TEST_EVENT,
    Webhook,
    WebhookDelivery,
    mask_target,
)
from webhooks.validation import InvalidWebhook as InvalidWebhook  # the error every door catches
from webhooks.validation import clean, clean_format


class WebhookNotFound(NotFoundError):
    pass


class DeliveryNotFound(NotFoundError):
    pass


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest class

    ok: bool
    status_code: int | None
    latency_ms: float
    error: str
    delivery_id: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ordered_webhooks() -> QuerySet[Webhook]:
    """Every webhook in creation order: the order ``index`` counts in."""
    return Webhook.objects.order_by("created_at", "id")


def with_last_delivery(webhooks: QuerySet[Webhook]) -> QuerySet[Webhook]:
    """``webhooks`` annotated with their newest delivery's ``last_delivery_status``,
    ``last_delivery_code`` (HTTP status, None) and ``last_delivery_at`` (None: never sent)."""
    newest = WebhookDelivery.objects.filter(webhook=OuterRef("pk")).order_by("-created_at", "-id")
    return webhooks.annotate(
        last_delivery_status=Subquery(newest.values("status")[:1]),
        last_delivery_code=Subquery(newest.values("status_code")[:1]),
        last_delivery_at=Subquery(newest.values("created_at")[:1]),
    )


def with_indexes(webhooks, start: int = 0) -> list[Webhook]:
    """A slice of ordered_webhooks() that begins at position ``start``, each given its index."""
    numbered = list(webhooks)
    for offset, webhook in enumerate(numbered):
        webhook.index = start + offset
    return numbered


def list_webhooks() -> list[Webhook]:
    """All webhooks in creation order, each with its ``index``."""
    return with_indexes(ordered_webhooks())


def get_webhook(ref: str | int) -> Webhook:
    """By 0-based index (``"0"``, ``2``) or by id (``"wh-..."``)."""
    text = str(ref).strip()
    ordered = ordered_webhooks()
    # ASCII digits only: "٣" or "²" name no index (int() would take the first and choke on
    # the second), and are looked up as an id, which they are not either: a 404.
    if text.isascii() and text.isdigit():
        index = int(text)
        webhook = ordered[index : index + 1].first() if index < 10**9 else None
        if webhook is None:
            count = ordered.count()
            known = f"indexes are 0-{count - 1}" if count else "there are no webhooks"
            raise WebhookNotFound(f"no webhook at index {index}: {known}")
        webhook.index = index
        return webhook
    webhook = (
        Webhook.objects.filter(id=text).first() if can_match(text, Webhook._meta.pk.max_length) else None
    )
    if webhook is None:
        text = shown(text)
        raise WebhookNotFound(f"webhook not found: {text}")
    webhook.index = Webhook.objects.filter(
        Q(created_at__lt=webhook.created_at) | Q(created_at=webhook.created_at, id__lt=webhook.id)
    ).count()
    return webhook


def add_webhook(
    url: Any, events: Any = None, headers: Any = None, enabled: bool = True, format: Any = None
) -> tuple[Webhook, str]:
    """Create a webhook; returns it and its signing secret, which is never shown again (and
    only signs ``standard`` deliveries: chat services check no signature)."""
    url, events, headers = clean(url, events, headers)
    webhook = Webhook(events=events, enabled=bool(enabled), format=clean_format(format, url))
    secret = save_new(webhook, url, headers)
    webhook.index = get_webhook(webhook.id).index
    return webhook, secret


def save_new(webhook: Webhook, url: str, headers: dict[str, str]) -> str:
    """Store a new, already validated webhook with its target (encrypted; shown masked) and a
    fresh signing secret; returns the secret, which is never shown again."""
    webhook.set_target(url, headers)
    secret = webhook.set_new_secret()
    webhook.save()
    return secret


def save_edit(webhook: Webhook) -> None:
    """Store an edited webhook. The format decides what is masked, but a URL once masked stays
    masked: a format edit (slack -> standard) must not uncover the secret path."""
    before = Webhook.objects.filter(pk=webhook.pk).values_list("format", flat=True).first() or ""
    webhook.url = mask_target(webhook.target_url, webhook.format, before)
    webhook.save()


def as_given(webhook: Webhook) -> dict[str, Any]:
    """``url`` and ``headers`` unmasked: only for the answer to the request that created it."""
    return {"url": webhook.target_url, "headers": webhook.target_headers}


def delete_webhook(ref: str | int) -> Webhook:
    webhook = get_webhook(ref)
    Webhook.objects.filter(id=webhook.id).delete()
    return webhook


def set_enabled(ref: str | int, enabled: bool) -> Webhook:
    """Enable (forgetting past failures) or disable a webhook by hand."""
    webhook = get_webhook(ref)
    changes: dict[str, Any] = {"enabled": enabled}
    if enabled:
        changes.update(failure_streak=0, failing_since=None, disabled_reason="")
    else:
        changes.update(disabled_reason="disabled by an operator")
    Webhook.objects.filter(id=webhook.id).update(**changes)
    for name, value in changes.items():
        setattr(webhook, name, value)
    return webhook


def test_webhook(ref: str | int) -> TestResult:
    """Send a test event now (``{"event": "test", "data": {}}`` signed, or a chat message in the
    webhook's format) and wait for the answer.

    Recorded as a delivery; it neither retries nor counts towards disabling the webhook.
    """
    webhook = get_webhook(ref)
    body = payloads.body_for(webhook.format, TEST_EVENT, {})
    record = WebhookDelivery(webhook=webhook, event=TEST_EVENT, body=body)
    attempt = sending.send(webhook, record.message_id, body.encode())
    record.status = WebhookDelivery.Status.DELIVERED if attempt.ok else WebhookDelivery.Status.FAILED
    record.attempts = 1
    record.status_code = attempt.status_code
    record.response_excerpt = attempt.response_excerpt
    record.error = attempt.error
    record.duration_ms = attempt.duration_ms
    record.last_attempt_at = timezone.now()
    record.save()
    return TestResult(attempt.ok, attempt.status_code, attempt.duration_ms, attempt.error, record.id)


def deliveries(ref: str | int) -> QuerySet[WebhookDelivery]:
    """A webhook's deliveries, newest first."""
    return WebhookDelivery.objects.filter(webhook=get_webhook(ref)).order_by("-created_at", "-id")


def redeliver(ref: str | int, delivery_id: str) -> WebhookDelivery:
    """Send a delivery's body again as a new delivery (same webhook-id), even to a disabled webhook."""
    webhook = get_webhook(ref)
    original = (
        WebhookDelivery.objects.filter(id=delivery_id, webhook=webhook).first()
        if can_match(delivery_id, WebhookDelivery._meta.pk.max_length)
        else None
    )
    if original is None:
        raise DeliveryNotFound(f"delivery {shown(delivery_id)} not found for webhook {webhook.id}")
    now = timezone.now()
    with transaction.atomic():
        again = WebhookDelivery.objects.create(
            webhook=webhook,
            event=original.event,
            body=original.body,
            message_id=original.message_id,
            redelivery_of=original,
            created_at=now,
            next_attempt_at=now,
        )
        transaction.on_commit(lambda: dispatch.enqueue([again.id]))
    return again


def import_webhook(entry: dict[str, Any]) -> tuple[bool, str]:
    """A webhook from a v0.1.x config (url, events, headers, timeout, retry, enabled); idempotent.

    Raises InvalidWebhook for an entry that cannot be imported."""
    url = str(entry.get("url", "")).strip()
    shown = mask_target(url, formats.infer(url))
    if any(webhook.target_url == url for webhook in Webhook.objects.filter(url=shown)):
        return False, f"webhook {shown}: exists"
    webhook, secret = add_webhook(
        url,
        entry.get("events"),
        entry.get("headers"),
        enabled=entry.get("enabled", True) is not False,
        format=entry.get("format"),
    )
    ignored = [key for key in ("timeout", "retry") if key in entry]
    note = (
        f"; {' and '.join(ignored)} ignored (every webhook uses HYPERSDK_WEBHOOK_TIMEOUT and the retry schedule)"
        if ignored
        else ""
    )
    signing = (
        f"signing secret {secret} (shown once)"
        if webhook.signed
        else f"format {webhook.format} ({webhook.format} messages are not signed)"
    )
    return (
        True,
        f"webhook {shown} ({webhook.id}, index {webhook.index}, {' '.join(webhook.events)}), {signing}{note}",
    )
