"""The Webhooks page with Django's test client: add (the secret shown once), delete, the last
delivery, the deliveries list and redeliver, and who may change what."""

from __future__ import annotations

import re

import pytest

from tests.webhook_receiver import Reply
from webhooks import drain
from webhooks import service as webhooks
from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


@pytest.fixture
def receiver(receiver, settings):
    """The shared receiver, with loopback webhook targets allowed."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return receiver


def secret_shown(page: str) -> str | None:
    found = re.search(r"data-webhook-secret>(whsec_[^<]+)<", page)
    return found.group(1) if found else None


# ---- add ----------------------------------------------------------------------------------------


def test_adding_a_webhook_shows_its_signing_secret_once(operator_browser, receiver):
    response = operator_browser.post(
        "/ui/webhooks/add/",
        {"url": receiver.url, "format": "", "events": ["job.completed", "job.failed"]},
        **HTMX,
    )
    assert response.status_code == 201
    page = response.content.decode()
    webhook = Webhook.objects.get()
    assert secret_shown(page) == webhook.secret and "shown this once" in page
    assert webhook.events == ["job.completed", "job.failed"] and webhook.format == "standard"
    assert f'id="webhook-{webhook.id}"' in page  # the list, with the new row, came back with it
    again = operator_browser.get("/ui/webhooks/").content.decode()
    assert secret_shown(again) is None and webhook.secret not in again


def test_the_page_carrying_a_new_secret_is_not_stored_by_any_cache(operator_browser, receiver):
    response = operator_browser.post("/ui/webhooks/add/", {"url": receiver.url, "format": ""}, **HTMX)
    assert response.status_code == 201 and secret_shown(response.content.decode())
    assert "no-store" in response["Cache-Control"]


def test_without_javascript_the_add_answers_with_the_whole_page_and_the_secret(operator_browser, receiver):
    response = operator_browser.post("/ui/webhooks/add/", {"url": receiver.url})
    assert response.status_code == 201
    page = response.content.decode()
    assert "<h1>Webhooks</h1>" in page and secret_shown(page) == Webhook.objects.get().secret
    assert Webhook.objects.get().events == ["job.started", "job.completed", "job.failed"]  # none ticked


def test_a_chat_webhook_shows_no_secret_and_its_url_masked(operator_browser):
    response = operator_browser.post("/ui/webhooks/add/", {"url": SLACK, "events": ["*"]}, **HTMX)
    page = response.content.decode()
    assert response.status_code == 201 and secret_shown(page) is None and "not signed" in page
    assert Webhook.objects.get().format == "slack"
    assert (
        "XXXXSECRET" not in page
        and "XXXXSECRET" not in operator_browser.get("/ui/webhooks/").content.decode()
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"url": ""}, "url", "a URL is required"),
        ({"url": "ftp://example.com/x"}, "url", "http"),
        ({"url": "http://127.0.0.1:9/x"}, "url", "127.0.0.1"),  # loopback is not allowed by default
        ({"url": "https://exa mple.com/"}, "url", "not a valid URL: &#x27; &#x27; is not allowed"),
        (
            {"url": "https://example.org/<b>x</b>\"'"},
            "url",
            "not a valid URL: &#x27;&lt;&#x27; is not allowed",
        ),
        ({"url": "https://hooks.example.com/x", "format": "carrier-pigeon"}, "format", "carrier-pigeon"),
        ({"url": "https://hooks.example.com/x", "events": ["job.exploded"]}, "events", "job.exploded"),
    ],
)
def test_a_bad_webhook_is_a_422_with_the_error_beside_its_field(operator_browser, body, field, message):
    response = operator_browser.post("/ui/webhooks/add/", body, **HTMX)
    assert response.status_code == 422
    page = response.content.decode()
    errors = re.findall(rf'id="(?:id_)?{field}-error">([^<]*)<', page)
    assert errors and message in errors[0], page
    assert not Webhook.objects.exists()


# ---- the list -----------------------------------------------------------------------------------


def test_each_webhook_shows_its_format_events_and_last_delivery(operator_browser, receiver):
    webhook, _ = webhooks.add_webhook(receiver.url, ["job.completed"])
    never = operator_browser.get("/ui/webhooks/").content.decode()
    assert "none yet" in never.split(f'id="webhook-{webhook.id}"')[1]
    receiver.reply(Reply(503))
    webhooks.test_webhook(webhook.id)
    row = operator_browser.get("/ui/webhooks/").content.decode().split(f'id="webhook-{webhook.id}"')[1]
    cell = row.split('data-field="last-delivery">')[1].split("</td>")[0]
    assert "<td>standard</td>" in row and "job.completed" in row
    assert ">failed</span>" in cell and "HTTP 503" in cell


def test_a_row_action_by_index_answers_with_the_row_and_its_last_delivery(operator_browser, receiver):
    webhook, _ = webhooks.add_webhook(receiver.url)
    row = operator_browser.post("/ui/webhooks/0/test/", **HTMX).content.decode()
    assert row.lstrip().startswith(f'<tr id="webhook-{webhook.id}">') and ">delivered</span>" in row
    assert operator_browser.post("/ui/webhooks/7/disable/", **HTMX).status_code == 404


# ---- delete -------------------------------------------------------------------------------------


def test_without_javascript_delete_asks_on_a_page_then_deletes(operator_browser, receiver):
    webhook, _ = webhooks.add_webhook(receiver.url)
    page = operator_browser.get(f"/ui/webhooks/{webhook.id}/delete/").content.decode()
    assert "Delete webhook 0?" in page and Webhook.objects.exists()
    response = operator_browser.post(f"/ui/webhooks/{webhook.id}/delete/")
    assert response.status_code == 302 and not Webhook.objects.exists()


def test_an_htmx_delete_answers_with_the_list_renumbered(operator_browser, receiver):
    first, _ = webhooks.add_webhook(receiver.url)
    second, _ = webhooks.add_webhook(receiver.url + "second")
    assert 'hx-confirm="Delete webhook 0' in operator_browser.get("/ui/webhooks/").content.decode()
    page = operator_browser.post(f"/ui/webhooks/{first.id}/delete/", **HTMX).content.decode()
    assert f'id="webhook-{first.id}"' not in page and "Deleted webhook" in page
    assert re.search(rf'id="webhook-{second.id}">\s*<td>0</td>', page)
    assert list(Webhook.objects.values_list("id", flat=True)) == [second.id]


def test_deleting_an_unknown_webhook_is_a_404(operator_browser):
    assert operator_browser.post("/ui/webhooks/wh-nope/delete/").status_code == 404


# ---- deliveries and redeliver -------------------------------------------------------------------


def test_the_deliveries_list_shows_each_delivery_newest_first(operator_browser, receiver):
    webhook, _ = webhooks.add_webhook(receiver.url)
    receiver.reply(Reply(500, body=b"boom"))
    failed = webhooks.test_webhook(webhook.id)
    delivered = webhooks.test_webhook(webhook.id)
    page = operator_browser.get(f"/ui/webhooks/{webhook.id}/deliveries/").content.decode()
    assert page.index(delivered.delivery_id) < page.index(failed.delivery_id)
    assert "HTTP 500" in page and "HTTP 200" in page and ">Redeliver</button>" in page


def test_redeliver_queues_the_same_body_again_and_shows_it(operator_browser, receiver):
    webhook, secret = webhooks.add_webhook(receiver.url)
    first = webhooks.test_webhook(webhook.id)
    response = operator_browser.post(
        f"/ui/webhooks/{webhook.id}/deliveries/{first.delivery_id}/redeliver/", **HTMX
    )
    assert response.status_code == 200
    again = WebhookDelivery.objects.get(redelivery_of_id=first.delivery_id)
    page = response.content.decode()
    assert (
        f"Redelivery {again.id} of {first.delivery_id} queued." in page
        and f'id="delivery-{again.id}"' in page
    )
    drain.deliver(again.id)  # what the worker does with it
    one, two = receiver.requests
    assert one.body == two.body and one.verify(secret) == two.verify(secret)


def test_redelivering_an_unknown_delivery_is_a_404(operator_browser, receiver):
    webhook, _ = webhooks.add_webhook(receiver.url)
    assert (
        operator_browser.post(f"/ui/webhooks/{webhook.id}/deliveries/dlv-nope/redeliver/").status_code == 404
    )


# ---- permissions --------------------------------------------------------------------------------


def test_a_viewer_sees_webhooks_and_deliveries_but_no_buttons_to_change_them(viewer_browser, receiver):
    webhook, _ = webhooks.add_webhook(receiver.url)
    webhooks.test_webhook(webhook.id)
    page = viewer_browser.get("/ui/webhooks/").content.decode()
    assert f'id="webhook-{webhook.id}"' in page and "Add a webhook" not in page and ">Delete<" not in page
    deliveries = viewer_browser.get(f"/ui/webhooks/{webhook.id}/deliveries/").content.decode()
    assert "delivered" in deliveries and "Redeliver" not in deliveries


def test_a_viewer_cannot_add_delete_or_redeliver(viewer_browser, receiver):
    webhook, _ = webhooks.add_webhook(receiver.url)
    sent = webhooks.test_webhook(webhook.id)
    for path in (
        "/ui/webhooks/add/",
        f"/ui/webhooks/{webhook.id}/delete/",
        f"/ui/webhooks/{webhook.id}/deliveries/{sent.delivery_id}/redeliver/",
    ):
        assert viewer_browser.post(path, {"url": receiver.url + "x"}, **HTMX).status_code == 403, path
    assert Webhook.objects.count() == 1 and WebhookDelivery.objects.count() == 1
