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


def _lost_job_in(output, vm_path: str = "/dc/vm/prod/app01") -> Job:
    """A running job whose worker died, exporting into a directory the operator made."""
    return Job.objects.create(
        vm_path=vm_path, output_path=str(output), status="running", output_created=False
    )


def test_a_lost_job_leaves_no_finished_disk_in_an_operators_directory(tmp_path):
    output = tmp_path / "operator-made"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    (output / "app01-disk1.vmdk").write_bytes(b"finished before the worker died")
    (output / "app01-disk2.vmdk.part").write_bytes(b"half")
    (output / "manifest.json").write_text('{"source": {"vm_path": "/dc/vm/prod/app01"}}')
    jobs.remove_partial_output(_lost_job_in(output))
    assert sorted(path.name for path in output.iterdir()) == ["notes.txt"]


def test_a_lost_job_keeps_a_complete_export_and_other_vms_files(tmp_path):
    output = tmp_path / "operator-made"
    output.mkdir()
    kept = ["app01.ovf", "app01-disk1.vmdk", "web01-disk1.vmdk", "manifest.json"]
    for name in kept:
        (output / name).write_text("x")
    (output / "manifest.json").write_text('{"source": {"vm_path": "/dc/vm/prod/web01"}}')
    jobs.remove_partial_output(_lost_job_in(output))  # app01 complete: its .ovf is there
    assert sorted(path.name for path in output.iterdir()) == sorted(kept)
    (output / "app01.ovf").unlink()
    jobs.remove_partial_output(_lost_job_in(output))  # now incomplete; web01's files are not ours
    assert sorted(path.name for path in output.iterdir()) == ["manifest.json", "web01-disk1.vmdk"]
