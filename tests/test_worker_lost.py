"""A worker SIGKILLed mid-export: the reaper marks its job failed and cleans up (no redelivery)."""

from __future__ import annotations

import pytest

from exports import jobs
from exports.models import Job
from tests.conftest import WorkerProcess, register_vcenter, wait_for

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]


def test_sigkilled_worker_is_found_by_the_reaper(
    worker_environment, slow_vsphere, export_root, tmp_path, settings
):
    sim, _ = slow_vsphere
    register_vcenter(sim, "slow")
    worker = WorkerProcess(
        worker_environment | {"HYPERSDK_HEARTBEAT_SECONDS": "1"}, tmp_path / "worker.log", name="doomed"
    ).start()
    try:
        output = export_root / "db01"
        job_id = jobs.submit_jobs(
            [{"vm_path": "/dc/vm/prod/db01", "output_path": str(output), "vcenter": "slow"}]
        ).job_ids[0]
        wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")
        assert output.exists()
        worker.kill()
    finally:
        worker.stop()
    settings.HYPERSDK_WORKER_LOST_SECONDS = 3
    wait_for(lambda: job_id in jobs.reap_lost_jobs(), message="the reaper to notice")
    job = Job.objects.get(id=job_id)
    assert (job.status, job.error) == ("failed", "worker lost")
    assert not output.exists()
