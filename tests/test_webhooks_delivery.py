"""Webhooks delivered by a real Celery worker: a real export on the vSphere simulator, its
events signed and POSTed to a receiver on loopback, retries by countdown, the sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exports import jobs
from exports.models import Job
from hypersdk import events
from schedules import service as schedules
from schedules.spec import ScheduleSpecSerializer
from tests.conftest import APP01, wait_for
from tests.webhook_receiver import Receiver, Reply
from webhooks import delivery, service
from webhooks.models import WebhookDelivery
from webhooks.tasks import sweep_webhook_deliveries

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

LOOPBACK = "127.0.0.0/8"
RETRY_DELAYS = "0.3,0.3,0.3,0.3,0.3"


@pytest.fixture(scope="module")
def worker_environment(worker_environment):
    """This module's worker may reach the loopback receiver and retries within a second."""
    return {
        **worker_environment,
        "HYPERSDK_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK,
        "HYPERSDK_WEBHOOK_RETRY_DELAYS": RETRY_DELAYS,
    }


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = [LOOPBACK]
    settings.HYPERSDK_WEBHOOK_RETRY_DELAYS = RETRY_DELAYS.split(",")
    events.subscribe(delivery.on_event)  # another module's test may have cleared the subscribers
    delivery.throttle._last.clear()


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def finished(job_id: str) -> Job | None:
    job = Job.objects.get(id=job_id)
    return job if job.is_finished else None


def settled(webhook_id: str, count: int) -> list[WebhookDelivery] | None:
    """The webhook's deliveries once there are ``count`` and none is pending, oldest first."""
    rows = list(WebhookDelivery.objects.filter(webhook_id=webhook_id).order_by("created_at", "id"))
    if len(rows) >= count and all(row.status != "pending" for row in rows):
        return rows
    return None


def test_a_real_export_notifies_subscribed_webhooks_with_signed_payloads(
    celery_worker, app01_seeds, export_root, receiver
):
    lifecycle, lifecycle_secret = service.add_webhook(receiver.url_for(path="/lifecycle"))
    progress, progress_secret = service.add_webhook(receiver.url_for(path="/progress"), ["job.progress"])
    output = export_root / "app01"
    job_id = jobs.submit_jobs([{"vm_path": APP01, "output_path": str(output), "manifest": True}]).job_ids[0]
    job = wait_for(lambda: finished(job_id), message="the export to finish")
    assert job.status == "completed", job.error

    sent = wait_for(lambda: settled(lifecycle.id, 2), message="job.started and job.completed delivered")
    assert [(d.event, d.status, d.attempts, d.status_code) for d in sent] == [
        ("job.started", "delivered", 1, 200),
        ("job.completed", "delivered", 1, 200),
    ]
    received = [r for r in receiver.requests if r.path == "/lifecycle"]
    started, completed = (request.verify(lifecycle_secret) for request in received)
    assert started["event"] == "job.started" and started["data"]["state"] == "running"
    data = completed["data"]
    assert (data["job_id"], data["name"], data["vm_path"], data["output"], data["state"], data["error"]) == (
        job_id,
        "app01",
        APP01,
        str(output),
        "completed",
        None,
    )
    assert sorted(f["name"] for f in data["files"]) == ["app01-disk1.vmdk", "app01-disk2.vmdk"]
    assert data["duration"] == job.duration_seconds and data["progress"]["percent"] == 100.0

    progress_sent = wait_for(lambda: settled(progress.id, 1), message="job.progress delivered")
    progress_received = [r.verify(progress_secret) for r in receiver.requests if r.path == "/progress"]
    assert len(progress_received) == len(progress_sent) >= 1
    assert {p["event"] for p in progress_received} == {"job.progress"}
    # Throttled: at most one per 10 s of the job's life, plus one per 10 % step, plus the first.
    assert len(progress_received) <= 12 + int(job.duration_seconds // 10)


def test_failures_are_retried_by_the_worker_until_the_receiver_recovers(celery_worker, receiver):
    webhook, secret = service.add_webhook(receiver.url, ["job.completed"])
    receiver.reply(Reply(500), Reply(503, headers={"Retry-After": "1"}))
    job = Job.objects.create(
        vm_path="/dc/vm/prod/web01", output_path="/exports/web01", status=Job.Status.COMPLETED
    )
    events.emit("job.completed", jobs._event_data(job))
    (sent,) = wait_for(lambda: settled(webhook.id, 1), message="the delivery to settle")
    assert (sent.status, sent.attempts, sent.status_code, sent.error) == ("delivered", 3, 200, "")
    first, second, third = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    assert all(request.verify(secret)["data"]["job_id"] == job.id for request in receiver.requests)


def test_410_from_the_receiver_disables_the_webhook(celery_worker, receiver):
    webhook, _ = service.add_webhook(receiver.url, ["job.completed"])
    receiver.reply(Reply(410))
    job = Job.objects.create(vm_path="/dc/vm/prod/web01", output_path="/x", status=Job.Status.COMPLETED)
    events.emit("job.completed", jobs._event_data(job))
    (gone,) = wait_for(lambda: settled(webhook.id, 1), message="the delivery to settle")
    assert (gone.status, gone.status_code, gone.attempts) == ("failed", 410, 1)
    webhook.refresh_from_db()
    assert not webhook.enabled and "410 Gone" in webhook.disabled_reason


def test_the_sweep_sends_a_delivery_whose_message_was_lost(celery_worker, receiver):
    webhook, secret = service.add_webhook(receiver.url)
    lost = WebhookDelivery.objects.create(
        webhook=webhook,
        event="job.completed",
        body='{"event":"job.completed","timestamp":"2026-01-01T00:00:00+00:00","data":{}}',
        next_attempt_at=timezone.now() - timedelta(minutes=5),
    )
    assert sweep_webhook_deliveries.delay().id
    (sent,) = wait_for(lambda: settled(webhook.id, 1), message="the swept delivery")
    assert (sent.id, sent.status) == (lost.id, "delivered")
    assert receiver.requests[0].verify(secret)["event"] == "job.completed"


def test_a_triggered_schedule_notifies_with_the_schedule_and_its_job(celery_worker, receiver, export_root):
    webhook, secret = service.add_webhook(receiver.url, ["schedule.triggered"])
    spec = ScheduleSpecSerializer(
        data={
            "name": "nightly",
            "cron": "0 2 * * *",
            "vm_path": "/dc/vm/prod/nope",
            "output_path": str(export_root),
        }
    )
    assert spec.is_valid(), spec.errors
    schedule = schedules.create_schedule(spec.validated_data)
    job = schedules.trigger(schedule.id)
    (sent,) = wait_for(lambda: settled(webhook.id, 1), message="schedule.triggered delivered")
    assert sent.status == "delivered"
    payload = receiver.requests[0].verify(secret)
    assert payload["event"] == "schedule.triggered"
    assert payload["data"]["schedule"] == {"id": schedule.id, "name": "nightly"}
    assert payload["data"]["job_id"] == job.id
    wait_for(lambda: finished(job.id), message="the scheduled job to end")
