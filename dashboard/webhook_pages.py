"""The Webhooks page: list, add (the signing secret shown once), delete, test, enable/disable,
and each webhook's deliveries with redeliver. Thin adapters over webhooks.service, which checks
a webhook with webhooks.validation as the API and the admin do. An unknown webhook or delivery
is the 404 page (DomainErrorMiddleware)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.forms import WebhookForm
from dashboard.htmx import render_page, role_required, row_action, row_after_action, wants_partial
from webhooks import service as webhooks

WEBHOOKS_PER_PAGE = 50  # the API's default page
DELIVERIES_PER_PAGE = 50


def _list_context(request: HttpRequest, **extra) -> dict:
    ordered = webhooks.with_last_delivery(webhooks.ordered_webhooks())
    page = Paginator(ordered, WEBHOOKS_PER_PAGE).get_page(request.GET.get("page"))
    numbered = webhooks.with_indexes(
        page.object_list, start=page.start_index() - 1 if page.object_list else 0
    )
    return {"tab": "webhooks", "page": page, "webhooks": numbered, "form": WebhookForm(), **extra}


def _list_page(request: HttpRequest, status: int = 200, **extra) -> HttpResponse:
    return render_page(
        request,
        "dashboard/webhooks.html",
        _list_context(request, **extra),
        partial="dashboard/partials/webhooks.html",
        status=status,
    )


@require_GET
@role_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    return _list_page(request)


@require_POST
@role_required
def webhook_add(request: HttpRequest) -> HttpResponse:
    """Add a webhook and answer with the page showing its signing secret, once: it is in this
    answer only (never in the session, a redirect or a log)."""
    form = WebhookForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            webhook, secret = webhooks.add_webhook(data["url"], data["events"], format=data["format"])
        except webhooks.InvalidWebhook as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            response = _list_page(request, status=201, created=webhook, secret=secret)
            add_never_cache_headers(response)  # the secret: no cache keeps a copy (no-store)
            return response
    return _list_page(request, status=422, form=form)  # htmx is configured to swap 422


WEBHOOK_ACTIONS = {"test", "enable", "disable"}


@row_action(WEBHOOK_ACTIONS)
def webhook_action(request: HttpRequest, webhook_id: str, action: str) -> HttpResponse:
    tested = None
    if action == "test":
        tested = webhooks.test_webhook(webhook_id)
    else:
        webhooks.set_enabled(webhook_id, action == "enable")
    webhook = _row_webhook(webhook_id)
    notice = ""
    if tested:
        notice = "Test delivered." if tested.ok else f"Test failed: {tested.error}"
    return row_after_action(
        request,
        notice=notice,
        back_to="dashboard:webhooks",
        template="dashboard/webhooks.html",
        row="dashboard/partials/webhook_row.html",
        context={"tab": "webhooks", "webhook": webhook, "tested": tested},
    )


def _row_webhook(ref: str):
    """The webhook (by id or index) as its row shows it: with its index and last delivery."""
    found = webhooks.get_webhook(ref)
    webhook = webhooks.with_last_delivery(webhooks.ordered_webhooks().filter(id=found.id)).get()
    webhook.index = found.index
    return webhook


@require_http_methods(["GET", "POST"])
@role_required
def webhook_delete(request: HttpRequest, webhook_id: str) -> HttpResponse:
    """GET: the confirmation page (without JavaScript); POST: delete. htmx asks in the browser
    (hx-confirm) and gets the list back: the indexes after the deleted one move up."""
    webhook = webhooks.get_webhook(webhook_id)
    if request.method == "GET":
        return render_page(request, "dashboard/webhook_delete.html", {"tab": "webhooks", "webhook": webhook})
    webhooks.delete_webhook(webhook.id)
    notice = f"Deleted webhook {webhook.url}."
    if wants_partial(request):
        return _list_page(request, notice=notice)
    messages.info(request, notice)
    return redirect("dashboard:webhooks")


def _deliveries_page(request: HttpRequest, webhook_id: str, **extra) -> HttpResponse:
    webhook = webhooks.get_webhook(webhook_id)
    page = Paginator(webhooks.deliveries(webhook.id), DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"tab": "webhooks", "webhook": webhook, "page": page, "deliveries": page.object_list, **extra}
    return render_page(
        request, "dashboard/webhook_deliveries.html", context, partial="dashboard/partials/deliveries.html"
    )


@require_GET
@role_required
def webhook_deliveries(request: HttpRequest, webhook_id: str) -> HttpResponse:
    return _deliveries_page(request, webhook_id)


@require_POST
@role_required
def webhook_redeliver(request: HttpRequest, webhook_id: str, delivery_id: str) -> HttpResponse:
    """Send a delivery's body again (a new delivery, queued for the workers); then the list."""
    again = webhooks.redeliver(webhook_id, delivery_id)
    notice = f"Redelivery {again.id} of {delivery_id} queued."
    if wants_partial(request):
        return _deliveries_page(request, webhook_id, notice=notice)
    messages.info(request, notice)
    return redirect("dashboard:webhook-deliveries", webhook_id=webhook_id)
