"""One transition path and one event: what a state change says, to whom, and that nobody
reads the row again to say it."""

from __future__ import annotations

import pytest

from exports import job_queue, jobs
from exports.api.serializers import ProgressSerializer
from exports.models import Job, JobLog
from exports.pipeline.progress import PROGRESS_FIELDS
from hypersdk.lib import events
from tests.test_webhooks import add, finished_job, webhook_settings  # noqa: F401 - fixtures
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def seen(monkeypatch):
    recorded: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "_subscribers", [lambda event, data: recorded.append((event, data))])
    return recorded


def test_a_state_change_logs_and_emits_the_job_as_it_now_is(seen):
    job = Job.objects.create(vm_path="/dc/vm/prod/web01", output_path="/exports/web01")
    jobs.cancel_job(job.id)
    ((event, data),) = seen
    assert event == "job.cancelled"
    assert data == Job.objects.get(id=job.id).as_event()
    assert (data["status"], data["error"]) == ("cancelled", "cancelled before it started")
    assert list(JobLog.objects.filter(job_id=job.id).values_list("message", flat=True)) == [
        "cancelled before it started"
    ]


def test_a_change_that_lost_the_race_says_nothing(seen):
    job = Job.objects.create(vm_path="/dc/vm/prod/web01", output_path="/exports/web01")
    assert job_queue.finish_job(job.id, Job.Status.COMPLETED) is False  # never claimed: not running
    assert seen == [] and not JobLog.objects.filter(job_id=job.id).exists()
    assert Job.objects.get(id=job.id).status == Job.Status.PENDING


def test_a_cancel_request_logs_but_emits_nothing(seen):
    job = finished_job(status=Job.Status.RUNNING, finished_at=None)
    assert jobs.cancel_job(job.id).cancel_requested is True
    assert seen == []
    assert JobLog.objects.get(job_id=job.id).message == "cancel requested"


def test_the_webhook_payload_comes_from_the_event_not_the_row(receiver):  # noqa: F811
    webhook, _ = add(receiver.url, ["job.completed"])
    job = finished_job()
    event = job.as_event()
    Job.objects.filter(id=job.id).update(vm_path="/dc/vm/prod/changed", status=Job.Status.FAILED)
    events.emit("job.completed", event)
    data = WebhookDelivery.objects.get(webhook=webhook).payload["data"]
    # The documented receiver names, the values the event carried.
    assert (data["vm_path"], data["state"], data["output"], data["duration"]) == (
        "/dc/vm/prod/app01",
        "completed",
        "/exports/app01",
        42.0,
    )
    assert "status" not in data and "output_path" not in data and data["error"] is None
    assert list(data["progress"]) == list(PROGRESS_FIELDS)


def test_the_progress_fields_are_declared_once():
    assert list(ProgressSerializer().fields) == list(PROGRESS_FIELDS)
    assert list(Job().progress) == list(PROGRESS_FIELDS)
    assert list(Job().as_event()["progress"]) == list(PROGRESS_FIELDS)


def test_counts_by_status_since_a_moment_counts_only_jobs_created_since():
    old = finished_job(status=Job.Status.FAILED)
    Job.objects.filter(id=old.id).update(created_at=old.created_at.replace(year=2000))
    finished_job()
    counts = jobs.counts_by_status()
    since = jobs.counts_by_status(since=old.created_at.replace(year=2001))
    assert (counts["failed"], counts["completed"], sum(counts.values())) == (1, 1, 2)
    assert (since["failed"], since["completed"], since["pending"]) == (0, 1, 0)
