"""Jobs run by a real Celery worker process against the vSphere simulator."""

from __future__ import annotations

import socket

import psutil
import pytest

from exports import jobs
from exports.models import Job, JobLog
from tests.conftest import APP01, register_vcenter, wait_for

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]


def finished(job_id: str) -> Job | None:
    job = Job.objects.get(id=job_id)
    return job if job.is_finished else None


def pool_process_names(worker) -> set[str]:
    """The names (host:pid) a job claimed by one of ``worker``'s pool processes may record."""
    return {f"{socket.gethostname()}:{child.pid}" for child in psutil.Process(worker.process.pid).children()}


def test_a_submitted_job_runs_to_completion_on_a_worker(celery_worker, app01_seeds, export_root):
    output = export_root / "app01"
    job_id = jobs.submit_jobs(
        [{"vm_path": APP01, "output_path": str(output), "manifest": True}], origin="api"
    ).job_ids[0]
    job = wait_for(lambda: finished(job_id), message="the job to finish")
    assert job.status == "completed", job.error
    assert (job.percent, job.phase) == (100.0, "completed")
    assert job.worker in pool_process_names(celery_worker), job.worker
    files = {f["name"]: f for f in job.result["files"]}
    assert set(files) == {"app01-disk1.vmdk", "app01-disk2.vmdk"}
    assert files["app01-disk1.vmdk"]["size"] == app01_seeds[0].stat().st_size
    assert job.result["manifest_path"] == str(output / "manifest.json")
    messages = list(JobLog.objects.filter(job_id=job_id).values_list("message", flat=True))
    assert messages[0].startswith("submitted (api)") and any(m.startswith("started on") for m in messages)
    assert messages[-1] == "completed"


def test_a_failing_export_records_its_one_line_error(celery_worker, export_root):
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/nope", "output_path": str(export_root / "x")}]
    ).job_ids[0]
    job = wait_for(lambda: finished(job_id), message="the job to fail")
    assert job.status == "failed"
    assert job.error == "VM not found: /dc/vm/prod/nope (give the inventory path, e.g. /dc/vm/folder/name)"
    assert not (export_root / "x").exists()


def test_cancel_stops_a_running_transfer_on_the_worker(celery_worker, slow_vsphere, export_root):
    sim, image = slow_vsphere
    register_vcenter(sim, "slow")
    output = export_root / "db01"
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/db01", "output_path": str(output), "vcenter": "slow"}]
    ).job_ids[0]
    wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")
    assert jobs.cancel_job(job_id).cancel_requested
    job = wait_for(lambda: finished(job_id), message="the job to stop")
    assert job.status == "cancelled" and job.error == "cancelled by request"
    report = sim.leases()[-1]
    assert report["aborted"] and report["bytes_served"] < image.stat().st_size
    assert not output.exists()
