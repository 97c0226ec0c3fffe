"""Webhooks in the admin with their recent deliveries (read-only), test, enable, disable and
redeliver actions. The signing secret is shown once, in the message after the webhook is added."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from hypersdk.lib.admin_actions import JSON_AS_THE_API_PARSES, enable_disable_actions
from webhooks import service, validation
from webhooks.formats import FORMATS
from webhooks.models import Webhook, WebhookDelivery

INLINE_DELIVERIES = 50

DELIVERY_FIELDS = [
    "id",
    "event",
    "status",
    "attempts",
    "status_code",
    "error",
    "duration_ms",
    "created_at",
    "last_attempt_at",
    "next_attempt_at",
]


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fk_name = "webhook"
    fields = DELIVERY_FIELDS
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"recent deliveries (the last {INLINE_DELIVERIES})"

    def get_queryset(self, request):
        deliveries = super().get_queryset(request)
        webhook_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        recent = list(
            deliveries.filter(webhook_id=webhook_id)
            .order_by("-created_at", "-id")
            .values_list("id", flat=True)[:INLINE_DELIVERIES]
        )
        return deliveries.filter(id__in=recent).order_by("-created_at", "-id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class WebhookForm(forms.ModelForm):
    """Adding: URL and headers as given (stored encrypted, shown masked afterwards). Changing:
    only events and enabled; the URL and header values are secrets, replaced by re-adding."""

    format = forms.ChoiceField(
        choices=[("", "(from the URL)"), *[(name, name) for name in FORMATS]],
        required=False,
        help_text="standard (signed JSON envelope), slack, discord or teams; only standard is signed",
    )

    class Meta:
        model = Webhook
        fields = ["url", "format", "events", "headers", "enabled"]

    def clean(self) -> dict:
        data = super().clean()
        if self.instance._state.adding:
            try:
                data["url"], data["events"], data["headers"] = validation.clean(
                    data.get("url"), data.get("events"), data.get("headers")
                )
                data["format"] = validation.clean_format(data.get("format"), data["url"])
            except validation.InvalidWebhook as exc:
                raise forms.ValidationError({exc.field: exc.message}) from None
        else:
            try:
                data["events"] = validation.clean_events(data.get("events"))
                data["format"] = data.get("format") or self.instance.format
            except validation.InvalidWebhook as exc:
                raise forms.ValidationError({exc.field: exc.message}) from None
        return data


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    formfield_overrides = JSON_AS_THE_API_PARSES
    list_display = [
        "id",
        "url",
        "format",
        "event_list",
        "enabled",
        "failure_streak",
        "disabled_reason",
        "created_at",
    ]
    list_filter = ["enabled", "format"]
    search_fields = ["id", "url"]
    readonly_fields = ["id", "created_at", "failure_streak", "failing_since", "disabled_reason"]
    inlines = [WebhookDeliveryInline]
    actions = [
        "send_test",
        *enable_disable_actions(
            service.set_enabled,
            enable_label="Enable selected webhooks (forget past failures)",
            disable_label="Disable selected webhooks",
        ),
    ]

    @admin.display(description="events")
    def event_list(self, webhook: Webhook) -> str:
        return " ".join(webhook.events)

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "url", "headers"] if obj is not None else fields

    def save_model(self, request, obj: Webhook, form, change: bool) -> None:
        if change:
            service.save_edit(obj)
            return
        secret = service.save_new(obj, form.cleaned_data["url"], form.cleaned_data["headers"])
        if not obj.signed:  # chat services check no signature: nothing to copy
            self.message_user(request, f"{obj.id}: {obj.format} messages are not signed.", messages.INFO)
            return
        self.message_user(
            request,
            f"Signing secret of {obj.id}: {secret} — copy it now, it is not shown again.",
            messages.WARNING,
        )

    @admin.action(description="Send a test payload to selected webhooks")
    def send_test(self, request, queryset) -> None:
        for webhook in queryset:
            result = service.test_webhook(webhook.id)
            if result.ok:
                self.message_user(
                    request,
                    f"{webhook.id}: HTTP {result.status_code} in {result.latency_ms:.0f} ms",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{webhook.id}: {result.error}", messages.ERROR)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "webhook", "event", "status", "attempts", "status_code", "created_at"]
    list_filter = ["status", "event"]
    search_fields = ["id", "message_id", "webhook__id", "webhook__url"]
    readonly_fields = [
        *DELIVERY_FIELDS,
        "webhook",
        "message_id",
        "response_excerpt",
        "redelivery_of",
        "body",
    ]
    fields = readonly_fields
    actions = ["redeliver"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Redeliver selected deliveries")
    def redeliver(self, request, queryset) -> None:
        again = [service.redeliver(d.webhook_id, d.id).id for d in queryset]
        self.message_user(request, f"redelivering as {', '.join(again)}", messages.SUCCESS)
