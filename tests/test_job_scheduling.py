"""Scheduling rules of the job service: per-vCenter limits in order, claiming once, reaping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exports import job_queue, jobs
from exports.models import Job
from exports.pipeline.output import OutputDir


@pytest.fixture
def five_jobs(db, redis_url, settings) -> list[str]:
    settings.HYPERSDK_MAX_CONCURRENT_EXPORTS = 2
    ids = []
    for n in range(5):  # distinct created_at: the order is the submission order
        ids += jobs.submit_jobs([{"vm_path": f"/dc/vm/prod/web{n}"}]).job_ids
        Job.objects.filter(id=ids[-1]).update(created_at=timezone.now() + timedelta(seconds=n))
    return ids


def test_dispatch_sends_only_as_many_as_the_vcenter_allows_oldest_first(five_jobs):
    assert jobs.dispatch_pending() == 2
    dispatched = set(Job.objects.filter(dispatched_at__isnull=False).values_list("id", flat=True))
    assert dispatched == set(five_jobs[:2])
    assert jobs.dispatch_pending() == 0  # both slots are taken by dispatched jobs


def test_claim_is_refused_at_the_limit_and_the_job_stays_pending(five_jobs):
    assert job_queue.claim_job(five_jobs[0], "w1") and job_queue.claim_job(five_jobs[1], "w1")
    assert job_queue.claim_job(five_jobs[2], "w1") is None
    assert Job.objects.get(id=five_jobs[2]).status == "pending"
    job_queue.finish_job(five_jobs[0], Job.Status.COMPLETED, result={})
    assert job_queue.claim_job(five_jobs[2], "w2").status == "running"


def test_a_job_is_claimed_once_whatever_the_deliveries(five_jobs):
    assert job_queue.claim_job(five_jobs[0], "w1") is not None
    assert job_queue.claim_job(five_jobs[0], "w2") is None  # a redelivered message
    assert Job.objects.get(id=five_jobs[0]).worker == "w1"


def test_a_cancelled_pending_job_is_never_claimed(five_jobs):
    jobs.cancel_job(five_jobs[0])
    assert job_queue.claim_job(five_jobs[0], "w1") is None


def test_lost_dispatches_are_sent_again(five_jobs):
    jobs.dispatch_pending()
    Job.objects.filter(id=five_jobs[0]).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    Job.objects.filter(id=five_jobs[1]).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    assert jobs.dispatch_pending() == 2


def test_reaper_fails_a_silent_job_and_removes_the_output_it_created(five_jobs, tmp_path, settings):
    settings.HYPERSDK_WORKER_LOST_SECONDS = 60
    output = tmp_path / "web0"
    Job.objects.filter(id=five_jobs[0]).update(output_path=str(output))
    job_queue.claim_job(five_jobs[0], "w1")
    run = OutputDir(output, five_jobs[0])  # what the worker's pipeline did before it died
    run.prepare(completed_marker_names=["web0.ovf"], overwrite=False)
    run.track("web0-disk1.vmdk")
    (output / "web0-disk1.vmdk.part").write_bytes(b"half")
    run._close()
    assert job_queue.reap_lost_jobs() == []  # its heartbeat is fresh
    Job.objects.filter(id=five_jobs[0]).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    assert job_queue.reap_lost_jobs() == [five_jobs[0]]
    job = Job.objects.get(id=five_jobs[0])
    assert (job.status, job.error) == ("failed", "worker lost")
    assert not output.exists()


def test_reaper_keeps_a_directory_it_did_not_create_but_removes_partials(five_jobs, tmp_path):
    output = tmp_path / "kept"
    output.mkdir()
    (output / "older-export.ova").write_bytes(b"keep me")
    Job.objects.filter(id=five_jobs[0]).update(output_path=str(output))
    job_queue.claim_job(five_jobs[0], "w1")
    run = OutputDir(output, five_jobs[0])
    run.prepare(completed_marker_names=["web0.ovf"], overwrite=False)
    run.track("web0-disk1.vmdk")
    (output / "web0-disk1.vmdk.part").write_bytes(b"half")
    run._close()
    Job.objects.filter(id=five_jobs[0]).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    job_queue.reap_lost_jobs()
    assert sorted(p.name for p in output.iterdir()) == ["older-export.ova"]


def test_lifecycle_events_are_emitted_without_secrets(five_jobs):
    from hypersdk.lib import events

    seen = []

    def record(event, data):
        seen.append((event, data))

    events.subscribe(record)
    try:
        job_queue.claim_job(five_jobs[0], "w1")
        job_queue.finish_job(five_jobs[0], Job.Status.COMPLETED, result={})
        job_queue.claim_job(five_jobs[1], "w1")
        job_queue.finish_job(five_jobs[1], Job.Status.FAILED, error="VM not found: x")
    finally:
        events._subscribers.remove(record)
    assert [(e, d["job_id"]) for e, d in seen] == [
        ("job.started", five_jobs[0]),
        ("job.completed", five_jobs[0]),
        ("job.started", five_jobs[1]),
        ("job.failed", five_jobs[1]),
    ]
    assert seen[-1][1]["error"] == "VM not found: x" and "password" not in str(seen)
