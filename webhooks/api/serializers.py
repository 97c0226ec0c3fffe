"""How webhooks and their deliveries look on the wire. The secret appears once: in the 201."""

from __future__ import annotations

from rest_framework import serializers

from hypersdk.lib.serializers import StrictSerializer
from webhooks.models import ALL_EVENTS, EVENTS, Webhook, WebhookDelivery


class WebhookSpecSerializer(StrictSerializer):
    """What POST /webhooks takes; the webhook service checks the values."""

    url = serializers.CharField(help_text="http or https URL of the receiver")
    events = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"any of {', '.join(EVENTS)}, or {ALL_EVENTS}; default job.started job.completed job.failed",
    )
    headers = serializers.DictField(child=serializers.CharField(), required=False, help_text="extra headers")
    enabled = serializers.BooleanField(default=True)
    format = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="standard (signed Standard Webhooks JSON), slack, discord or teams; default: inferred from the URL",
    )


class WebhookSerializer(serializers.ModelSerializer):
    index = serializers.IntegerField(help_text="0-based position in GET /webhooks; addresses the webhook")
    url = serializers.CharField(
        help_text="user:password@ and query values shown as *** (in full only in the 201)"
    )
    events = serializers.ListField(child=serializers.CharField())
    headers = serializers.DictField(
        child=serializers.CharField(), help_text="values shown as *** (in full only in the 201)"
    )

    class Meta:
        model = Webhook
        fields = [
            "index",
            "id",
            "url",
            "events",
            "format",
            "headers",
            "enabled",
            "disabled_reason",
            "failure_streak",
            "created_at",
        ]


class CreatedWebhookSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="Standard Webhooks signing secret: shown this once")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    payload = serializers.JSONField(help_text="the body as sent")
    redelivery_of = serializers.CharField(source="redelivery_of_id", allow_null=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "status",
            "message_id",
            "attempts",
            "status_code",
            "response_excerpt",
            "error",
            "duration_ms",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
            "redelivery_of",
            "payload",
        ]


class TestResultSerializer(serializers.Serializer):
    __test__ = False  # not a pytest class

    ok = serializers.BooleanField(help_text="the receiver answered 2xx")
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.FloatField()
    error = serializers.CharField(allow_blank=True)
    delivery_id = serializers.CharField()
