"""Webhooks: the API at the guide's paths, bad input, events fanned out to deliveries, signed
attempts against a real receiver on loopback, retries, disabling, the admin, config import."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from exports import jobs
from exports.models import Job
from hypersdk.lib import events
from hypersdk.lib.encryption import decrypt
from tests.factories import make_job
from tests.webhook_receiver import Reply
from webhooks import drain, fanout, retry_after, retry_policy, service
from webhooks.models import Webhook, WebhookDelivery
from webhooks.progress import ProgressThrottle

pytestmark = pytest.mark.django_db

LOOPBACK = ["127.0.0.0/8"]


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    """A receiver on this host is allowed; retries come at once (the test drives each attempt)."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    settings.HYPERSDK_WEBHOOK_RETRY_DELAYS = [0, 0, 0]
    settings.HYPERSDK_WEBHOOK_TIMEOUT = 10
    settings.HYPERSDK_WEBHOOK_DISABLE_AFTER_FAILURES = 20
    events.subscribe(fanout.on_event)  # another module's test may have cleared the subscribers
    fanout.throttle._last.clear()
    return settings


def add(url: str, events_=None, **kwargs) -> tuple[Webhook, str]:
    return service.add_webhook(url, events_, **kwargs)


def finished_job(status: str = Job.Status.COMPLETED, **fields) -> Job:
    now = timezone.now()
    values = {
        "vm_path": "/dc/vm/prod/app01",
        "output_path": "/exports/app01",
        "status": status,
        "started_at": now - timedelta(seconds=42),
        "finished_at": now,
        "result": {"vm_name": "app01", "files": [{"name": "app01-disk1.vmdk", "size": 10, "sha256": "ab"}]},
    }
    return Job.objects.create(**{**values, **fields})


def emit_completed(job: Job | None = None) -> Job:
    job = job or finished_job()
    events.emit("job.completed", job.as_event())
    return job


def progress_event(job: Job, **progress) -> dict:
    """The ``job.progress`` event a worker emits once it wrote ``progress`` to the job's row."""
    for name, value in progress.items():
        setattr(job, name, value)
    return job.as_event()


def attempt(webhook: Webhook) -> WebhookDelivery:
    """Make the next attempt of the webhook's latest delivery now, as its task would."""
    latest = WebhookDelivery.objects.filter(webhook=webhook).latest("created_at")
    WebhookDelivery.objects.filter(id=latest.id).update(next_attempt_at=timezone.now())
    drain.deliver(latest.id)
    return WebhookDelivery.objects.get(id=latest.id)


# ---- the API ----


def test_the_answer_carrying_a_new_secret_is_not_stored_by_any_cache(operator_api, receiver):
    response = operator_api.post("/webhooks", {"url": receiver.url}, format="json")
    assert response.status_code == 201 and response.json()["secret"]
    assert "no-store" in response["Cache-Control"]


def test_add_shows_the_secret_once_and_stores_it_encrypted(operator_api, receiver):
    response = operator_api.post("/webhooks", {"url": receiver.url}, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["id"].startswith("wh-") and created["index"] == 0
    assert created["events"] == ["job.started", "job.completed", "job.failed"]
    assert created["enabled"] is True
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    stored = Webhook.objects.get(id=created["id"])
    assert secret not in stored.secret_encrypted and decrypt(stored.secret_encrypted) == secret
    listing = operator_api.get("/webhooks").json()["results"]
    assert [(w["index"], w["id"], w["url"]) for w in listing] == [(0, created["id"], receiver.url)]
    assert "secret" not in listing[0] and secret not in json.dumps(listing)
    assert "secret" not in operator_api.get(f"/webhooks/{created['id']}").json()


def test_add_with_events_headers_and_disabled(operator_api, receiver):
    body = {
        "url": receiver.url,
        "events": ["job.completed", "schedule.triggered", "job.completed"],
        "headers": {"Authorization": "Bearer t0ken"},
        "enabled": False,
    }
    created = operator_api.post("/webhooks", body, format="json").json()
    assert created["events"] == ["job.completed", "schedule.triggered"]
    assert created["headers"] == {"Authorization": "Bearer t0ken"} and created["enabled"] is False
    everything = operator_api.post("/webhooks", {"url": receiver.url, "events": ["*"]}, format="json").json()
    assert everything["events"] == ["*"] and everything["index"] == 1


@pytest.mark.parametrize(
    ("body", "allowed", "field", "message"),
    [
        ({"url": "not a url"}, LOOPBACK, "url", "only http and https URLs are allowed"),
        ({"url": "ftp://files.example.com/hook"}, LOOPBACK, "url", "not 'ftp'"),
        ({"url": "http://127.0.0.1:9/hook", "events": ["job.exploded"]}, LOOPBACK, "events", "unknown event"),
        ({"url": "http://10.0.0.1/hook"}, LOOPBACK, "url", "10.0.0.1 is a private address"),
        ({"url": "http://169.254.169.254/latest"}, LOOPBACK, "url", "link-local"),
        ({"url": "http://localhost:9/hook"}, [], "url", "localhost resolves to 127.0.0.1, a loopback"),
        ({"url": "http://127.0.0.1:9/hook"}, [], "url", "127.0.0.1 is a loopback address"),
        ({"url": "https://[::1]/x"}, [], "url", "::1 is a loopback address"),
        ({"url": "https://exa mple.com/"}, LOOPBACK, "url", "not a valid URL: ' ' is not allowed"),
        ({"url": "https://example.org/<b>x</b>\"'"}, LOOPBACK, "url", "not a valid URL: '<' is not allowed"),
        ({"url": "https://example.org/?q=100%"}, LOOPBACK, "url", "'%' must start a percent-encoding"),
        ({"url": "http://example.com:99999/"}, LOOPBACK, "url", "port 99999 is not between 1 and 65535"),
        ({"url": "http://example.com:0/"}, LOOPBACK, "url", "port 0 is not between 1 and 65535"),
        ({"url": "http://%31%32%37.0.0.1/"}, LOOPBACK, "url", "a host name is never percent-encoded"),
        (
            {"url": "http://127.0.0.1:9/", "headers": {"webhook-id": "x"}},
            LOOPBACK,
            "headers",
            "set by HyperSDK",
        ),
        (
            {"url": "http://127.0.0.1:9/", "headers": {"X-A": "1\r\nX-B: 2"}},
            LOOPBACK,
            "headers",
            "line break",
        ),
        ({"events": ["job.started"]}, LOOPBACK, "url", "required"),
        (
            {"url": "http://127.0.0.1:9/", "headers": {f"X-{n}": "1" for n in range(33)}},
            LOOPBACK,
            "headers",
            "at most 32 headers, not 33",
        ),
        (
            {"url": "http://127.0.0.1:9/", "headers": {"X" * 257: "1"}},
            LOOPBACK,
            "headers",
            "a header name is longer than 256 bytes",
        ),
        (
            {"url": "http://127.0.0.1:9/", "headers": {"X-A": "\u00e9" * 2049}},
            LOOPBACK,
            "headers",
            "the value of X-A is longer than 4096 bytes",
        ),
        # A field the API does not take (a typo, or the v0.1.x config's timeout) is refused, as
        # jobs and schedules refuse theirs, instead of being dropped.
        ({"url": "http://127.0.0.1:9/", "timeout": 5}, LOOPBACK, "timeout", "unknown field"),
    ],
)
def test_bad_input_is_one_clear_400_and_creates_nothing(
    operator_api, settings, body, allowed, field, message
):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = allowed
    response = operator_api.post("/webhooks", body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field] and len(errors[field]) == 1 and message in errors[field][0]
    assert not Webhook.objects.exists()


def test_headers_up_to_the_bounds_are_kept(operator_api, settings):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    headers = {f"X-{n}": "1" for n in range(30)} | {"X" * 256: "v", "X-Long": "\u00e9" * 2048}
    response = operator_api.post(
        "/webhooks", {"url": "http://127.0.0.1:9/", "headers": headers}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Webhook.objects.get().target_headers == headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/webhooks/3"),
        ("post", "/webhooks/3/test"),
        ("get", "/webhooks/3/deliveries"),
        ("post", "/webhooks/3/deliveries/dlv-x/redeliver"),
        ("delete", "/webhooks/wh-nope"),
    ],
)
def test_an_unknown_index_or_id_is_404(operator_api, receiver, method, path):
    add(receiver.url)
    response = getattr(operator_api, method)(path)
    assert response.status_code == 404
    assert response.json()["detail"] in (
        "no webhook at index 3: indexes are 0-0",
        "webhook not found: wh-nope",
    )
    assert Webhook.objects.count() == 1


def test_delete_by_index_or_id_and_indexes_follow_creation_order(operator_api, receiver):
    first, _ = add(receiver.url_for(path="/a"))
    second, _ = add(receiver.url_for(path="/b"))
    third, _ = add(receiver.url_for(path="/c"))
    assert operator_api.delete("/webhooks/1").status_code == 204
    assert [(w["index"], w["id"]) for w in operator_api.get("/webhooks").json()["results"]] == [
        (0, first.id),
        (1, third.id),
    ]
    assert operator_api.delete(f"/webhooks/{first.id}").status_code == 204
    assert [(w["index"], w["id"]) for w in operator_api.get("/webhooks").json()["results"]] == [(0, third.id)]
    assert not Webhook.objects.filter(id=second.id).exists()


def test_test_sends_the_guides_signed_test_payload_and_reports_status_and_latency(operator_api, receiver):
    webhook, secret = add(receiver.url, headers={"X-Team": "ops"})
    response = operator_api.post("/webhooks/0/test")
    assert response.status_code == 200
    result = response.json()
    assert (result["ok"], result["status_code"], result["error"]) == (True, 200, "")
    assert result["latency_ms"] > 0
    (request,) = receiver.requests
    payload = request.verify(secret)
    assert (payload["event"], payload["data"]) == ("test", {}) and "timestamp" in payload
    assert request.headers["content-type"] == "application/json" and request.headers["x-team"] == "ops"
    recorded = operator_api.get("/webhooks/0/deliveries").json()["results"]
    assert [(d["id"], d["event"], d["status"], d["attempts"]) for d in recorded] == [
        (result["delivery_id"], "test", "delivered", 1)
    ]


def test_test_reports_the_receivers_error(operator_api, receiver):
    add(receiver.url)
    receiver.reply(Reply(500, body=b"boom"))
    result = operator_api.post("/webhooks/0/test").json()
    assert (result["ok"], result["status_code"], result["error"]) == (False, 500, "HTTP 500")
    assert WebhookDelivery.objects.get(id=result["delivery_id"]).response_excerpt == "boom"


def test_test_is_refused_at_connect_time_when_the_address_is_no_longer_allowed(
    operator_api, receiver, settings
):
    add(receiver.url)
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = []
    result = operator_api.post("/webhooks/0/test").json()
    assert result["ok"] is False and result["status_code"] is None
    assert "127.0.0.1 is a loopback address: refused" in result["error"]
    assert receiver.requests == []


def test_redeliver_sends_the_same_body_with_the_same_webhook_id(operator_api, receiver):
    webhook, secret = add(receiver.url)
    emit_completed()
    first = attempt(webhook)
    response = operator_api.post(f"/webhooks/{webhook.id}/deliveries/{first.id}/redeliver")
    assert response.status_code == 202
    again = response.json()
    assert again["id"] != first.id and again["redelivery_of"] == first.id and again["status"] == "pending"
    assert again["message_id"] == first.message_id
    drain.deliver(again["id"])
    assert WebhookDelivery.objects.get(id=again["id"]).status == "delivered"
    one, two = receiver.requests
    assert one.body == two.body and one.headers["webhook-id"] == two.headers["webhook-id"] == first.message_id
    assert one.verify(secret) == two.verify(secret)


# ---- events become deliveries ----


def test_each_event_becomes_a_delivery_for_each_enabled_subscribed_webhook(receiver):
    default, _ = add(receiver.url_for(path="/default"))
    progress_only, _ = add(receiver.url_for(path="/progress"), ["job.progress"])
    everything, _ = add(receiver.url_for(path="/all"), ["*"])
    add(receiver.url_for(path="/off"), enabled=False)
    job = finished_job(status=Job.Status.RUNNING, finished_at=None)
    events.emit("job.started", job.as_event())
    assert sorted(WebhookDelivery.objects.values_list("webhook_id", "event")) == sorted(
        [(default.id, "job.started"), (everything.id, "job.started")]
    )
    assert not WebhookDelivery.objects.filter(webhook=progress_only).exists()


def test_the_payload_describes_the_job(receiver):
    webhook, secret = add(receiver.url)
    job = emit_completed()
    attempt(webhook)
    payload = receiver.requests[0].verify(secret)
    assert payload["event"] == "job.completed"
    data = payload["data"]
    assert {k: data[k] for k in ("job_id", "name", "vm_path", "output", "state", "error", "duration")} == {
        "job_id": job.id,
        "name": "app01",
        "vm_path": "/dc/vm/prod/app01",
        "output": "/exports/app01",
        "state": "completed",
        "error": None,
        "duration": 42.0,
    }
    assert data["files"] == [{"name": "app01-disk1.vmdk", "size": 10, "sha256": "ab"}]
    assert set(data["progress"]) >= {"percent", "phase"}


def test_cancelling_a_pending_job_emits_job_cancelled(receiver):
    webhook, _ = add(receiver.url, ["job.cancelled"])
    job = make_job("/dc/vm/prod/web01", "/exports/web01")
    jobs.cancel_job(job.id)
    (cancelled,) = WebhookDelivery.objects.filter(webhook=webhook)
    assert cancelled.event == "job.cancelled"
    assert cancelled.payload["data"]["state"] == "cancelled"
    assert cancelled.payload["data"]["error"] == "cancelled before it started"


def test_job_progress_is_throttled_per_job_at_the_subscriber(receiver):
    webhook, _ = add(receiver.url, ["job.progress"])
    job = finished_job(status=Job.Status.RUNNING, finished_at=None)
    for percent in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 25):
        events.emit("job.progress", progress_event(job, phase="downloading", percent=percent))
    sent = [d.payload["data"]["progress"]["percent"] for d in WebhookDelivery.objects.filter(webhook=webhook)]
    assert sorted(sent) == [1, 12, 25]


def test_the_progress_throttle_lets_one_through_per_interval_and_each_ten_percent_step():
    now = [0.0]
    throttle = ProgressThrottle(10.0, clock=lambda: now[0])
    passed = []
    for second in range(0, 40):
        now[0] = float(second)
        percent = 1 + second * 0.2  # 1 % .. 8.8 %: never a new 10 % step
        passed.append(throttle.allow("job-1", percent))
    assert [second for second, ok in enumerate(passed) if ok] == [0, 10, 20, 30]
    now[0] = 30.5
    assert throttle.allow("job-1", 10.0) and not throttle.allow("job-1", 11.0)
    assert throttle.allow("job-2", 50.0)  # per job
    throttle.forget("job-1")
    assert throttle.allow("job-1", 11.0)


# ---- attempts, retries, disabling ----


def test_a_delivery_is_signed_over_the_exact_body_and_recorded(receiver):
    webhook, secret = add(receiver.url)
    emit_completed()
    sent = attempt(webhook)
    assert (sent.status, sent.attempts, sent.status_code, sent.error) == ("delivered", 1, 200, "")
    assert sent.duration_ms is not None and sent.next_attempt_at is None and sent.response_excerpt == "ok"
    (request,) = receiver.requests
    assert request.body == sent.body.encode()
    assert request.verify(secret)["event"] == "job.completed"
    assert request.headers["webhook-id"] == sent.message_id


def test_a_tampered_body_fails_verification(receiver):
    import standardwebhooks

    webhook, secret = add(receiver.url)
    emit_completed()
    attempt(webhook)
    request = receiver.requests[0]
    request.body = request.body.replace(b"completed", b"failed")
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        request.verify(secret)


def test_failures_are_retried_until_a_success_which_resets_the_streak(receiver):
    webhook, secret = add(receiver.url)
    receiver.reply(Reply(500), Reply(502, body=b"bad gateway"))
    emit_completed()
    first = attempt(webhook)
    assert (first.status, first.attempts, first.status_code, first.error) == ("pending", 1, 500, "HTTP 500")
    assert first.next_attempt_at is not None
    assert Webhook.objects.get(id=webhook.id).failure_streak == 1
    second = attempt(webhook)
    assert (second.attempts, second.status_code, second.response_excerpt) == (2, 502, "bad gateway")
    third = attempt(webhook)
    assert (third.status, third.attempts, third.status_code, third.error) == ("delivered", 3, 200, "")
    assert [r.headers["webhook-id"] for r in receiver.requests] == [third.message_id] * 3
    assert all(r.verify(secret) for r in receiver.requests)
    assert Webhook.objects.get(id=webhook.id).failure_streak == 0


def test_retry_after_is_honoured(receiver):
    webhook, _ = add(receiver.url)
    receiver.reply(Reply(503, headers={"Retry-After": "120"}))
    emit_completed()
    waiting = attempt(webhook)
    assert waiting.status == "pending"
    assert waiting.next_attempt_at - waiting.last_attempt_at >= timedelta(seconds=120)
    assert drain.deliver(waiting.id) is None  # not due: nothing sent
    assert len(receiver.requests) == 1


def test_retry_after_as_an_http_date():
    now = timezone.now()
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert timedelta(seconds=88) <= retry_after.parse_retry_after(later, now) <= timedelta(seconds=91)
    assert retry_after.parse_retry_after("soon", now) is None


def test_backoff_is_jittered_around_the_schedule():
    waits = {retry_policy.next_delay(300, None).total_seconds() for _ in range(50)}
    assert min(waits) >= 240 and max(waits) <= 360 and len(waits) > 1


def test_delivery_gives_up_after_the_last_retry(receiver):
    webhook, _ = add(receiver.url)
    receiver.default = Reply(500)
    emit_completed()
    for _ in range(3):
        assert attempt(webhook).status == "pending"
    last = attempt(webhook)
    assert (last.status, last.attempts) == ("failed", 4)
    assert last.error == "HTTP 500; gave up after 4 attempts" and last.next_attempt_at is None
    assert Webhook.objects.get(id=webhook.id).enabled  # 4 failures are not a dead receiver


def test_410_gone_disables_the_webhook(receiver):
    webhook, _ = add(receiver.url)
    receiver.reply(Reply(410))
    emit_completed()
    gone = attempt(webhook)
    assert (gone.status, gone.status_code) == ("failed", 410)
    webhook.refresh_from_db()
    assert not webhook.enabled and "410 Gone" in webhook.disabled_reason
    emit_completed()
    assert WebhookDelivery.objects.filter(webhook=webhook).count() == 1


def test_a_run_of_consecutive_failures_disables_the_webhook(receiver, settings):
    settings.HYPERSDK_WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.HYPERSDK_WEBHOOK_RETRY_DELAYS = [0] * 10
    webhook, _ = add(receiver.url)
    receiver.default = Reply(500)
    emit_completed()
    attempt(webhook)
    emit_completed()  # a second event: the streak spans deliveries
    attempt(webhook)
    third = attempt(webhook)
    assert (
        third.status == "failed"
        and third.error == "HTTP 500; webhook disabled: 3 consecutive failed deliveries"
    )
    webhook.refresh_from_db()
    assert not webhook.enabled and webhook.disabled_reason == "3 consecutive failed deliveries"
    older = WebhookDelivery.objects.filter(webhook=webhook).exclude(id=third.id).get()
    assert older.status == "pending"
    WebhookDelivery.objects.filter(id=older.id).update(next_attempt_at=timezone.now())
    drain.deliver(older.id)
    older.refresh_from_db()
    assert older.status == "failed" and older.error.startswith("not sent: webhook disabled (3 consecutive")
    assert len(receiver.requests) == 3


def test_a_day_of_failures_disables_the_webhook(receiver):
    webhook, _ = add(receiver.url)
    Webhook.objects.filter(id=webhook.id).update(
        failure_streak=1, failing_since=timezone.now() - timedelta(hours=25)
    )
    receiver.reply(Reply(500))
    emit_completed()
    attempt(webhook)
    webhook.refresh_from_db()
    assert not webhook.enabled and webhook.disabled_reason.startswith("every delivery failed since")


def test_a_slow_receiver_times_out_and_the_delivery_is_retried(receiver, settings):
    settings.HYPERSDK_WEBHOOK_TIMEOUT = 0.5
    webhook, _ = add(receiver.url)
    receiver.reply(Reply(200, delay=60))
    emit_completed()
    slow = attempt(webhook)
    assert (slow.status, slow.status_code, slow.attempts) == ("pending", None, 1)
    assert slow.error == "no complete answer within 0.5 s"
    assert attempt(webhook).status == "delivered"


def test_an_address_refused_at_connect_time_is_a_failed_attempt(receiver, settings):
    webhook, _ = add(receiver.url)
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = []
    emit_completed()
    refused = attempt(webhook)
    assert refused.status == "pending" and "127.0.0.1 is a loopback address: refused" in refused.error
    assert receiver.requests == []


def test_a_delivery_is_sent_once_however_many_messages_arrive(receiver):
    webhook, _ = add(receiver.url)
    emit_completed()
    sent = attempt(webhook)
    assert drain.deliver(sent.id) is None and drain.deliver(sent.id) is None
    assert len(receiver.requests) == 1


# ---- import_config and the admin ----

NO_INLINES = {"deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0"}


def test_import_webhook_is_idempotent(receiver):
    created, label = service.import_webhook(
        {"url": receiver.url, "events": ["job.failed"], "headers": {"X-A": "1"}, "timeout": 30, "retry": 3}
    )
    webhook = Webhook.objects.get()
    assert created and label.startswith(f"webhook {receiver.url} ({webhook.id}, index 0, job.failed)")
    assert "signing secret whsec_" in label and "timeout and retry ignored" in label
    assert webhook.target_headers == {"X-A": "1"} and webhook.headers == {"X-A": "***"}
    assert webhook.events == ["job.failed"]
    assert service.import_webhook({"url": receiver.url}) == (False, f"webhook {receiver.url}: exists")
    with pytest.raises(service.InvalidWebhook, match="url: 10.1.2.3 is a private address"):
        service.import_webhook({"url": "http://10.1.2.3/hook"})
    assert Webhook.objects.count() == 1


def test_admin_adds_a_webhook_and_shows_its_secret_once(admin_client, receiver):
    response = admin_client.post(
        "/admin/webhooks/webhook/add/",
        {"url": receiver.url, "events": '["job.completed"]', "headers": "{}", "enabled": "on", **NO_INLINES},
        follow=True,
    )
    assert response.status_code == 200
    webhook = Webhook.objects.get()
    shown = [str(m) for m in response.context["messages"] if "Signing secret" in str(m)]
    assert len(shown) == 1 and webhook.secret in shown[0]
    page = admin_client.get(f"/admin/webhooks/webhook/{webhook.id}/change/")
    assert page.status_code == 200 and webhook.secret.encode() not in page.content
    assert webhook.secret_encrypted.encode() not in page.content


def test_admin_refuses_a_private_address(admin_client, settings):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = []
    response = admin_client.post(
        "/admin/webhooks/webhook/add/",
        {"url": "http://localhost/hook", "events": "[]", "headers": "{}", **NO_INLINES},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "url": [
            "localhost resolves to 127.0.0.1, a loopback address: refused "
            "(HYPERSDK_WEBHOOK_ALLOWED_NETWORKS can allow it)"
        ]
    }
    assert not Webhook.objects.exists()


def test_admin_test_and_redeliver_actions(admin_client, receiver):
    webhook, _ = add(receiver.url)
    emit_completed()
    sent = attempt(webhook)
    page = admin_client.get(f"/admin/webhooks/webhook/{webhook.id}/change/")
    assert sent.id.encode() in page.content  # the delivery inline
    response = admin_client.post(
        "/admin/webhooks/webhook/", {"action": "send_test", "_selected_action": [webhook.id]}, follow=True
    )
    assert any("HTTP 200" in str(m) for m in response.context["messages"])
    response = admin_client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [sent.id]},
        follow=True,
    )
    again = WebhookDelivery.objects.get(redelivery_of=sent)
    assert any(again.id in str(m) for m in response.context["messages"])
    assert [r.headers["webhook-id"] for r in receiver.requests][:1] == [sent.message_id]
