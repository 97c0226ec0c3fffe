"""Webhooks delivered by a real Celery worker: a real export on the vSphere simulator, its
events signed and POSTed to a receiver on loopback, retries by countdown, the sweep."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from exports import jobs
from exports.models import Job
from hypersdk.lib import events
from schedules import service as schedules
from schedules.spec import ScheduleSpecSerializer
from tests.conftest import APP01, wait_for
from tests.factories import make_job
from tests.webhook_receiver import Reply
from webhooks import fanout, service
from webhooks.models import WebhookDelivery
from webhooks.tasks import sweep_webhook_deliveries

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

LOOPBACK = "127.0.0.0/8"
RETRY_DELAYS = "0.3,0.3,0.3,0.3,0.3"
PUBLIC_URL = "https://hypersdk.example.com"


@pytest.fixture(scope="module")
def worker_environment(worker_environment):
    """This module's worker may reach the loopback receiver and retries within a second."""
    return {
        **worker_environment,
        "HYPERSDK_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK,
        "HYPERSDK_WEBHOOK_RETRY_DELAYS": RETRY_DELAYS,
        "HYPERSDK_PUBLIC_URL": PUBLIC_URL,  # chat messages link each job's dashboard page
    }


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = [LOOPBACK]
    settings.HYPERSDK_WEBHOOK_RETRY_DELAYS = RETRY_DELAYS.split(",")
    events.subscribe(fanout.on_event)  # another module's test may have cleared the subscribers
    fanout.throttle._last.clear()


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
    # One still queued when the job ended is dropped ("skipped"): it would contradict the end.
    delivered = [row for row in progress_sent if row.status == "delivered"]
    assert {row.status for row in progress_sent} <= {"delivered", "skipped"}
    assert len(progress_received) == len(delivered) >= 1
    assert all(p["data"]["state"] == "running" for p in progress_received)
    assert {p["event"] for p in progress_received} == {"job.progress"}
    # Throttled: at most one per 10 s of the job's life, plus one per 10 % step, plus the first.
    assert len(progress_received) <= 12 + int(job.duration_seconds // 10)


def test_failures_are_retried_by_the_worker_until_the_receiver_recovers(celery_worker, receiver):
    webhook, secret = service.add_webhook(receiver.url, ["job.completed"])
    receiver.reply(Reply(500), Reply(503, headers={"Retry-After": "1"}))
    job = make_job("/dc/vm/prod/web01", "/exports/web01", status=Job.Status.COMPLETED)
    events.emit("job.completed", job.as_event())
    (sent,) = wait_for(lambda: settled(webhook.id, 1), message="the delivery to settle")
    assert (sent.status, sent.attempts, sent.status_code, sent.error) == ("delivered", 3, 200, "")
    first, second, third = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    assert all(request.verify(secret)["data"]["job_id"] == job.id for request in receiver.requests)


def test_410_from_the_receiver_disables_the_webhook(celery_worker, receiver):
    webhook, _ = service.add_webhook(receiver.url, ["job.completed"])
    receiver.reply(Reply(410))
    job = make_job("/dc/vm/prod/web01", "/x", status=Job.Status.COMPLETED)
    events.emit("job.completed", job.as_event())
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


@pytest.fixture
def chat_receivers():
    from tests.chat_receivers import discord_receiver, slack_receiver, teams_receiver

    receivers = {"slack": slack_receiver(), "discord": discord_receiver(), "teams": teams_receiver()}
    for receiver in receivers.values():
        receiver.start()
    yield receivers
    for receiver in receivers.values():
        receiver.stop()


def test_the_guides_example_1_notifies_slack_discord_and_teams_of_real_backups(
    celery_worker, worker_environment, chat_receivers, export_root, tmp_path
):
    """Example 1 as written, with each receiver's URL (and an explicit -format, the receivers
    being on loopback), then its schedules running: every receiver accepts every message."""
    from functools import partial

    from tests.cli_runner import run_process

    hyperctl = partial(run_process, "hyperctl")  # the console script, as the guide runs it

    env = {**worker_environment, "HYPERSDK_DATA_DIR": str(tmp_path / "cli")}
    for index, (fmt, receiver) in enumerate(chat_receivers.items()):
        # 1. Add Slack webhook
        done = hyperctl(
            "webhooks", "add", receiver.url, "job.started", "job.completed", "job.failed", "-format", fmt, env=env
        )  # fmt: skip
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert f"format: {fmt} events: job.started job.completed job.failed\n" in done.stdout
        assert f"{fmt} messages are not signed" in done.stdout
        tested = hyperctl("webhooks", "test", str(index), env=env)
        assert tested.returncode == 0, tested.stderr
    listed = hyperctl("webhooks", "list", env=env)
    assert listed.returncode == 0 and [line.split()[2] for line in listed.stdout.splitlines()[1:]] == [
        "slack",
        "discord",
        "teams",
    ]
    assert "XXXXXXXX" not in listed.stdout and "TOKEN" not in listed.stdout  # the paths' secrets
    # 2. and 3.: the schedules, as written
    for args in (
        ["prod-backup", "0 2 * * *", "-vm", "/dc/vm/prod/db01", "-output", "/backups/db01"],
        ["weekly-archive", "0 0 * * 0", "-vm", "/dc/vm/prod/web01", "-output", "/archives/web01"],
    ):
        created = hyperctl("schedules", "create", *args, env=env)
        assert created.returncode == 0, created.stderr
    # "whenever backups run": one that succeeds, one whose VM is gone.
    good, bad = (
        schedules.create_schedule(_schedule_spec(name, vm, str(export_root / name)))
        for name, vm in (("app01-backup", APP01), ("gone-backup", "/dc/vm/prod/nope"))
    )
    completed, failed = schedules.trigger(good.id), schedules.trigger(bad.id)
    assert wait_for(lambda: finished(completed.id), message="the backup").status == "completed"
    assert wait_for(lambda: finished(failed.id), message="the failing backup").status == "failed"
    for webhook in service.list_webhooks():
        sent = wait_for(
            lambda webhook=webhook: settled(webhook.id, 5), message=f"{webhook.format} deliveries"
        )
        assert sorted((row.event, row.status) for row in sent if row.event != "test") == [
            ("job.completed", "delivered"),
            ("job.failed", "delivered"),
            ("job.started", "delivered"),
            ("job.started", "delivered"),
        ], [(row.event, row.status_code, row.error) for row in sent]
    for fmt, receiver in chat_receivers.items():
        text = json.dumps(receiver.accepted, ensure_ascii=False)
        assert len(receiver.accepted) == 5, fmt  # the test and four job events
        for expected in ("Export completed", "Export failed", completed.id, failed.id, "/dc/vm/prod/nope"):
            assert expected in text, (fmt, expected)
        assert f"{PUBLIC_URL}/ui/jobs/{completed.id}/" in text


def _schedule_spec(name: str, vm_path: str, output: str) -> dict:
    spec = ScheduleSpecSerializer(
        data={"name": name, "cron": "0 2 * * *", "vm_path": vm_path, "output_path": output}
    )
    assert spec.is_valid(), spec.errors
    return spec.validated_data
