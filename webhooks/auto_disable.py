"""When a webhook stops being tried: the receiver says it is gone for good, or every delivery
failed for too long (``HYPERSDK_WEBHOOK_DISABLE_AFTER_*``)."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from django.db.models import F
from django.db.models.functions import Coalesce

from webhooks import conf
from webhooks.models import Webhook
from webhooks.sending import Attempt

logger = logging.getLogger(__name__)


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


def count_failure(webhook: Webhook, now: datetime) -> str:
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


def reset_streak(webhook: Webhook) -> None:
    """A delivery got through: the webhook's failure streak starts over."""
    if webhook.failure_streak or webhook.failing_since:
        Webhook.objects.filter(id=webhook.id).update(failure_streak=0, failing_since=None)


def disable(webhook_id: str, reason: str) -> bool:
    disabled = Webhook.objects.filter(id=webhook_id, enabled=True).update(
        enabled=False, disabled_reason=reason[:512]
    )
    if disabled:
        logger.warning("webhook %s disabled: %s", webhook_id, reason)
    return bool(disabled)
