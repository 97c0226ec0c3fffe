"""A worker SIGKILLed mid-export: the reaper marks its job failed and cleans up (no redelivery)."""

from __future__ import annotations

import pytest

from exports import job_queue, jobs
from exports.models import Job
from exports.pipeline.output import OutputDir
from tests.conftest import APP01, WorkerProcess, register_vcenter, wait_for

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
    wait_for(lambda: job_id in job_queue.reap_lost_jobs(), message="the reaper to notice")
    job = Job.objects.get(id=job_id)
    assert (job.status, job.error) == ("failed", "worker lost")
    assert not output.exists()


def _died_mid_run(output, job_id: str, *, overwrite: bool = False) -> Job:
    """A running job whose worker died after its pipeline wrote app01's first disk."""
    run = OutputDir(output, job_id)
    run.prepare(completed_marker_names=["app01.ovf", "app01.ova"], overwrite=overwrite)
    run.track("app01-disk1.vmdk")
    (output / "app01-disk1.vmdk").write_bytes(b"finished before the worker died")
    run.track("app01-disk2.vmdk")
    (output / "app01-disk2.vmdk.part").write_bytes(b"half")
    run._close()  # nothing of the run's memory survives: only its record
    return Job.objects.create(id=job_id, vm_path=APP01, output_path=str(output), status="running")


def test_a_lost_job_leaves_no_finished_disk_in_an_operators_directory(tmp_path):
    output = tmp_path / "operator-made"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    (output / "manifest.json").write_text('{"source": {"vm_path": "/dc/vm/prod/app01"}}')
    job_queue.remove_partial_output(_died_mid_run(output, "job-lost-1"))
    assert sorted(path.name for path in output.iterdir()) == ["manifest.json", "notes.txt"]


@pytest.mark.stand_in_ovf
def test_a_lost_overwrite_puts_the_previous_export_back_and_keeps_other_vms_files(tmp_path):
    output = tmp_path / "operator-made"
    output.mkdir()
    before = {"app01.ovf": "old ovf", "app01-disk1.vmdk": "old disk", "web01-disk1.vmdk": "web01's"}
    for name, text in before.items():
        (output / name).write_text(text)
    job_queue.remove_partial_output(_died_mid_run(output, "job-lost-2", overwrite=True))
    assert {path.name: path.read_text() for path in output.iterdir()} == before
