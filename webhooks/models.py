"""Webhooks (where lifecycle events are POSTed) and their deliveries (one row per event sent)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.db import models
from django.utils import timezone

from hypersdk.lib import redaction
from hypersdk.lib.encryption import decrypt, encrypt
from webhooks import formats, signing
from webhooks.choices import ALL_EVENTS
from webhooks.choices import DEFAULT_EVENTS as DEFAULT_EVENTS
from webhooks.choices import EVENTS as EVENTS

TEST_EVENT = "test"


def new_webhook_id() -> str:
    return f"wh-{secrets.token_urlsafe(6)}"


def new_delivery_id() -> str:
    return f"dlv-{secrets.token_urlsafe(9)}"


def new_message_id() -> str:
    return f"msg_{secrets.token_urlsafe(12)}"


class Webhook(models.Model):
    """Addressed by its id or by its 0-based index in creation order (``hyperctl webhooks list``)."""

    id = models.CharField(primary_key=True, max_length=32, default=new_webhook_id, editable=False)
    # Shown everywhere: credentials and query values masked (hypersdk.lib.redaction). What is sent
    # to lives in url_encrypted; custom header values only in headers_encrypted.
    url = models.CharField(max_length=2048, help_text="as shown: user:password@ and query values masked")
    url_encrypted = models.TextField(blank=True, editable=False)
    events = models.JSONField(
        default=list, blank=True, help_text='event names, or ["*"] for all (empty: the defaults)'
    )
    headers = models.JSONField(default=dict, blank=True, help_text="extra request headers, values masked")
    headers_encrypted = models.TextField(blank=True, editable=False)
    # What the body looks like: the signed Standard Webhooks envelope, or a chat message.
    format = models.CharField(
        max_length=16,
        choices=[(name, name) for name in formats.FORMATS],
        default=formats.STANDARD,
        help_text="standard (signed JSON envelope), slack, discord or teams; inferred from the URL if not given",
    )
    enabled = models.BooleanField(default=True)
    # Standard Webhooks signing secret (whsec_...), encrypted at rest; shown once, at creation.
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Consecutive failed attempts since the last success; too many disable the webhook.
    failure_streak = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} {self.url}"

    @property
    def secret(self) -> str:
        return decrypt(self.secret_encrypted)

    def set_target(self, url: str, headers: dict[str, str]) -> None:
        """Where deliveries go and the headers they carry: stored encrypted, shown masked
        (set ``format`` first: a chat service's URL path is a secret too)."""
        self.url_encrypted = encrypt(url)
        self.url = mask_target(url, self.format)
        self.headers_encrypted = encrypt(json.dumps(headers)) if headers else ""
        self.headers = redaction.mask_headers(headers)

    @property
    def target_url(self) -> str:
        """The URL as given (with its credentials); only for sending."""
        return decrypt(self.url_encrypted) if self.url_encrypted else self.url

    @property
    def target_headers(self) -> dict[str, str]:
        """The custom headers with their values; only for sending."""
        return json.loads(decrypt(self.headers_encrypted)) if self.headers_encrypted else {}

    def set_new_secret(self) -> str:
        """A fresh signing secret, stored encrypted; the caller shows it once."""
        secret = signing.new_secret()
        self.secret_encrypted = encrypt(secret)
        return secret

    @property
    def signed(self) -> bool:
        """Only the Standard Webhooks envelope is signed: chat services verify no signature."""
        return self.format == formats.STANDARD

    def wants(self, event: str) -> bool:
        return ALL_EVENTS in self.events or event in self.events


def mask_target(url: str, fmt: str, *earlier: str) -> str:
    """A webhook URL as shown: credentials and query values masked, and for a chat format (or a
    chat service's host) the secret part of the path as well. ``earlier``: formats the webhook
    had before (an edit): a URL once masked as a chat URL stays masked (the strictest rule wins)."""
    inferred = formats.infer(url)
    rules = [formats.PUBLIC_PATH_SEGMENTS[inferred]] if inferred in formats.PUBLIC_PATH_SEGMENTS else []
    # A chat format on a host that is not the service's own (a self-hosted Slack-compatible
    # receiver): where the secret starts in its path is unknown, so the whole path is secret.
    rules += [0 for chat in (fmt, *earlier) if chat in formats.PUBLIC_PATH_SEGMENTS and chat != inferred]
    return redaction.mask_url(url, min(rules) if rules else None)


class WebhookDelivery(models.Model):
    """One event for one webhook: the exact body signed and sent, and how each attempt went."""

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its next attempt
        DELIVERED = "delivered"  # a 2xx answer
        FAILED = "failed"  # gave up: attempts exhausted, 410 Gone, or the webhook was disabled
        SKIPPED = "skipped"  # not sent: a job.progress whose job had ended meanwhile

    id = models.CharField(primary_key=True, max_length=32, default=new_delivery_id, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)
    # The job a job.* event is about: a job.progress is dropped once its job has ended.
    job_id = models.CharField(max_length=64, blank=True, default="")
    # The exact body bytes (UTF-8 JSON); a JSON column could reorder keys and break signatures.
    body = models.TextField()
    # webhook-id: the same on every retry and redelivery, so a receiver can drop duplicates.
    message_id = models.CharField(max_length=64, default=new_message_id)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Of the attempts, how many were answered 429: they delay, but count toward no give-up.
    rate_limited = models.PositiveIntegerField(default=0, editable=False)
    status_code = models.PositiveIntegerField(null=True, blank=True, help_text="of the last attempt")
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(null=True, blank=True, help_text="of the last attempt")
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="redeliveries"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["webhook", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.event}"

    @property
    def payload(self) -> Any:
        return json.loads(self.body)
