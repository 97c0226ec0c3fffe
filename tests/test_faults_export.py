"""Export-side faults (issue 7): a worker SIGKILLed, vCenter killed or hung, the disk full.

Each test runs real worker processes against a real vSphere simulator and asserts what an
operator would see: the job's final status and its one-line error (through the API too),
that nothing partial is left looking complete, and that the worker keeps working afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from exports import job_queue, jobs
from exports.models import Job, JobLog
from exports.pipeline.connect import VCenterTarget, connect
from exports.pipeline.inventory import find_vm
from exports.pipeline.lease import ExportLease
from exports.pipeline.progress import CancelToken, NullReporter
from tests.conftest import (
    APP01,
    WorkerProcess,
    govc_environment,
    register_vcenter,
    start_simulator,
    wait_for,
)
from tests.vsphere_sim.harness import make_stream_vmdk

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

DB01 = "/dc/vm/prod/db01"
# Names a finished export gives its files: none may exist after a failure.
FINAL_SUFFIXES = {".ovf", ".ova", ".mf", ".vmdk"}


def finished(job_id: str) -> Job | None:
    job = Job.objects.get(id=job_id)
    return job if job.is_finished else None


def looks_complete(directory: Path) -> list[str]:
    """Files under ``directory`` bearing a finished export's names."""
    if not directory.exists():
        return []
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.suffix in FINAL_SUFFIXES or path.name == "manifest.json"
    )


def partials(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.part")) if directory.exists() else []


def api_job(daemon, job_id: str) -> dict:
    response = requests.get(
        f"{daemon.url}/jobs/{job_id}", headers={"Authorization": f"Token {daemon.token}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


def log_messages(job_id: str) -> list[str]:
    return list(JobLog.objects.filter(job_id=job_id).order_by("id").values_list("message", flat=True))


@pytest.fixture(scope="module")
def tiny_vsphere(tmp_path_factory):
    """A healthy host of its own whose db01 has one 4 MiB disk: the export after a fault."""
    sim = start_simulator(tmp_path_factory.mktemp("tiny"))
    sim.seed_disks(DB01, [make_stream_vmdk(tmp_path_factory.mktemp("tiny-seed") / "db01-disk1.vmdk", 4)])
    yield sim
    sim.stop()


# ---- 1. a worker SIGKILLed mid-export -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("existing_dir", [False, True], ids=["job-made-the-dir", "operator-made-the-dir"])
def test_a_sigkilled_worker_leaves_a_failed_job_and_nothing_that_looks_complete(
    daemon, worker_environment, slow_vsphere, export_root, tmp_path, settings, existing_dir
):
    sim, _ = slow_vsphere
    register_vcenter(sim, "slow")
    output = export_root / "db01"
    if existing_dir:
        output.mkdir()
        (output / "notes.txt").write_text("the operator's file, not the job's")
    worker = WorkerProcess(
        worker_environment | {"HYPERSDK_HEARTBEAT_SECONDS": "1"}, tmp_path / "worker.log", name="doomed"
    ).start()
    try:
        job_id = jobs.submit_jobs([{"vm_path": DB01, "output_path": str(output), "vcenter": "slow"}]).job_ids[
            0
        ]
        wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")
        worker.kill()
    finally:
        worker.stop()

    # Killed mid-transfer: the bytes sit in a .part, nothing bears a finished export's name.
    assert partials(output) == ["db01-disk1.vmdk.part"]
    assert looks_complete(output) == []
    assert Job.objects.get(id=job_id).status == "running"  # until the periodic reaper notices

    reaper = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "exports.tasks.reap_lost_jobs" in reaper
    settings.HYPERSDK_WORKER_LOST_SECONDS = 3
    wait_for(lambda: job_id in job_queue.reap_lost_jobs(), message="the reaper to notice")

    body = api_job(daemon, job_id)
    assert (body["status"], body["error"]) == ("failed", "worker lost")
    assert not Job.objects.filter(status="running").exists()
    if existing_dir:
        assert sorted(os.listdir(output)) == ["notes.txt"]  # the .part went, the operator's file stayed
    else:
        assert not output.exists()


# ---- 2. vCenter killed mid-download, or hung ------------------------------------------------


@pytest.mark.slow
def test_a_vcenter_killed_mid_download_fails_the_job_after_bounded_retries(
    worker_environment, tiny_vsphere, export_root, tmp_path
):
    dying = start_simulator(tmp_path / "dying", nfc_rate=2 << 20)
    worker = None
    try:
        dying.seed_disks(DB01, [make_stream_vmdk(tmp_path / "seed" / "db01-disk1.vmdk", 16)])
        register_vcenter(dying, "dying")
        register_vcenter(tiny_vsphere, "tiny")
        # One pool process: the export after the fault runs in the very process that saw it.
        worker = WorkerProcess(worker_environment, tmp_path / "worker.log", name="survivor", concurrency=1)
        worker.start()
        output = export_root / "db01"
        job_id = jobs.submit_jobs(
            [{"vm_path": DB01, "output_path": str(output), "vcenter": "dying"}]
        ).job_ids[0]
        wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")
        dying.kill()

        job = wait_for(lambda: finished(job_id), message="the job to give up")
        assert job.status == "failed"
        assert "\n" not in job.error
        assert re.fullmatch(
            rf"export failed after 3 attempts: vCenter unreachable while opening the export lease of "
            rf"{DB01}: .*[Cc]onnection refused.*",
            job.error,
        ), job.error
        retries = [m for m in log_messages(job_id) if m.startswith("retrying under a new lease")]
        assert len(retries) == 2
        assert not output.exists()

        # The worker is not hung on the dead host: the same process exports from a live one.
        again = export_root / "db01-again"
        next_id = jobs.submit_jobs([{"vm_path": DB01, "output_path": str(again), "vcenter": "tiny"}]).job_ids[
            0
        ]
        next_job = wait_for(lambda: finished(next_id), message="the next export")
        assert next_job.status == "completed", next_job.error
        assert next_job.worker == job.worker
        assert (again / "db01.ovf").is_file() and (again / "db01-disk1.vmdk").is_file()
    finally:
        if worker is not None:
            worker.stop()
        dying.stop()


def test_aborting_a_lease_on_a_hung_vcenter_gives_up_instead_of_blocking(tmp_path):
    sim = start_simulator(tmp_path / "hung")
    try:
        service_instance = connect(VCenterTarget.from_env(govc_environment(sim)), call_timeout=2.0)
        vm = find_vm(service_instance, DB01)
        lease = ExportLease.open(vm, DB01, NullReporter(), CancelToken())
        lease.start_keepalive(lambda: 10.0)
        sim.pause()  # the TCP connection stays up, nothing answers
        returned = threading.Event()
        threading.Thread(target=lambda: (lease.abort(), returned.set()), daemon=True).start()
        wait_for(returned.is_set, timeout=90, message="the abort to give up on the hung vCenter")
        assert lease.finished
    finally:
        sim.resume()
        sim.stop()


# ---- 3. disk full while downloading ---------------------------------------------------------


@dataclass
class SmallFilesystem:
    path: Path
    # The worker runs under RLIMIT_FSIZE this size (EFBIG), or None on the tmpfs (ENOSPC).
    file_size_limit: int | None
    error: str  # how the job's error begins, with the errno it names
    # The file system says how little room it has: the job's preflight refuses it before any lease.
    seen_by_preflight: bool = False


@pytest.fixture(params=["ENOSPC", "EFBIG"])
def small_filesystem(request, export_root):
    """ENOSPC: an 8 MiB tmpfs inside the export root (we run as root, so it mounts; app01's
    disks hold 36 MiB): the job's preflight sees the free space and refuses before any lease.
    EFBIG: a plain directory, and the worker limited to 16 MiB files, which no free-space
    figure shows: the download itself meets the limit."""
    path = export_root / "small"
    path.mkdir()
    if request.param == "EFBIG":
        yield SmallFilesystem(path, 16 << 20, r"file size limit reached writing {} \(EFBIG\)")
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)], check=True)
    try:
        yield SmallFilesystem(
            path, None, r"8\.0 MiB free where {} is, the export needs about .*", seen_by_preflight=True
        )
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.slow
def test_disk_full_fails_cleanly_without_retrying_and_the_daemon_keeps_serving(
    daemon, worker_environment, vsphere, app01_seeds, tiny_vsphere, small_filesystem, export_root, tmp_path
):
    register_vcenter(tiny_vsphere, "tiny")
    worker = WorkerProcess(worker_environment, tmp_path / "worker.log", name="cramped")
    if small_filesystem.file_size_limit:
        worker.command = ["prlimit", f"--fsize={small_filesystem.file_size_limit}", "--", *worker.command]
    worker.start()
    try:
        leases_before = len(vsphere.leases())
        output = small_filesystem.path / "app01"
        job_id = jobs.submit_jobs([{"vm_path": APP01, "output_path": str(output)}]).job_ids[0]
        job = wait_for(lambda: finished(job_id), message="the job to fail")

        assert job.status == "failed"
        leases = vsphere.leases()[leases_before:]
        if small_filesystem.seen_by_preflight:
            assert re.fullmatch(small_filesystem.error.format(re.escape(str(output))), job.error), job.error
            assert leases == []
        else:
            disk = re.escape(str(output)) + r"/app01-disk[12]\.vmdk"
            assert re.fullmatch(small_filesystem.error.format(disk) + ": partial files removed", job.error), (
                job.error
            )
            assert len(leases) == 1 and leases[0]["aborted"]  # no new lease can make room: not retried
        assert list(small_filesystem.path.iterdir()) == []
        assert not any(m.startswith("retrying") for m in log_messages(job_id))

        # The daemon keeps serving: the API answers and the next export, with room, completes.
        assert api_job(daemon, job_id)["error"] == job.error
        roomy = export_root / "roomy"
        response = requests.post(
            f"{daemon.url}/jobs/submit",
            json={"vm_path": DB01, "vcenter": "tiny", "output_path": str(roomy)},
            headers={"Authorization": f"Token {daemon.token}"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        next_id = response.json()["job_ids"][0]
        wait_for(lambda: finished(next_id), message="the roomy export")
        assert api_job(daemon, next_id)["status"] == "completed"
        assert (roomy / "db01.ovf").is_file() and (roomy / "db01-disk1.vmdk").is_file()
    finally:
        worker.stop()
