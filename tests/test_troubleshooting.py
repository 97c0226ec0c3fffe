"""The guide's troubleshooting commands that are ours, typed as the guide writes them, on the
daemon's machine (hyperctl's local mode) and against its API (hyperexport --daemon-status)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from exports.models import Job, JobLog
from schedules.models import Schedule
from tests.conftest import APP01
from tests.factories import make_job
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

BIN = Path(sys.executable).parent


def guide(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """One line of the guide, split as a shell would (no quoting in these lines)."""
    program, *args = command.split()
    return subprocess.run([str(BIN / program), *args], env=env, capture_output=True, text=True)


@pytest.fixture
def machine(worker_environment) -> dict[str, str]:
    return worker_environment | {"HYPERSDK_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


@pytest.fixture
def failed_job() -> Job:
    now = timezone.now()
    job = make_job(
        APP01, "/exports/app01", status="failed", error="VM not found: /dc/vm/prod/app01",
        created_at=now, started_at=now, finished_at=now,
    )  # fmt: skip
    JobLog.objects.create(job=job, level="error", message="VM not found: /dc/vm/prod/app01")
    return job


def test_troubleshooting_failed_jobs(machine, failed_job):
    listed = guide("hyperctl query -status failed", machine)
    assert listed.returncode == 0 and failed_job.id in listed.stdout, listed.stderr
    detail = guide(f"hyperctl query -id {failed_job.id}", machine)
    assert detail.returncode == 0 and "VM not found" in detail.stdout, detail.stderr
    for command in (f"hyperctl logs {failed_job.id}", f"hyperctl logs -f {failed_job.id}"):
        logs = guide(command, machine)
        assert "VM not found: /dc/vm/prod/app01" in logs.stdout, (command, logs.stderr)
    status = guide("hyperctl status", machine)
    assert status.returncode == 0 and "1 failed" in status.stdout, status.stderr


def test_troubleshooting_a_schedule_not_running(machine, export_root):
    created = subprocess.run(  # not a troubleshooting line: the schedule to troubleshoot
        [str(BIN / "hyperctl"), "schedules", "create", "nightly", "0 2 * * *", "-vm", APP01,
         "-output", str(export_root), "-disabled"],
        env=machine, capture_output=True, text=True,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    schedule = Schedule.objects.get(name="nightly")

    listed = guide("hyperctl schedules list", machine)
    assert listed.returncode == 0 and "nightly" in listed.stdout, listed.stderr
    assert guide(f"hyperctl schedules enable {schedule.id}", machine).returncode == 0
    schedule.refresh_from_db()
    assert schedule.enabled
    triggered = guide(f"hyperctl schedules trigger {schedule.id}", machine)
    assert triggered.returncode == 0, triggered.stderr
    job = Job.objects.get(origin="schedule")
    assert job.id in triggered.stdout


def test_troubleshooting_a_webhook_not_firing(machine):
    receiver = Receiver().start()
    try:
        assert guide(f"hyperctl webhooks add {receiver.url}", machine).returncode == 0
        listed = guide("hyperctl webhooks list", machine)
        assert listed.returncode == 0 and receiver.url in listed.stdout, listed.stderr
        tested = guide("hyperctl webhooks test 0", machine)
        assert tested.returncode == 0, tested.stderr
    finally:
        receiver.stop()
    assert receiver.events() == ["test"]


def test_troubleshooting_the_daemon_connection(daemon, tmp_path):
    # A machine with only the token: everything else comes from the guide's command line.
    env = {"PATH": str(BIN), "HYPERSDK_DATA_DIR": str(tmp_path / "cli"), "HYPERSDK_API_TOKEN": daemon.token}
    checked = guide(f"hyperexport --daemon-status --daemon-url {daemon.url}", env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("Daemon:       ok, version "), checked.stdout
    assert f"(daemon at {daemon.url})" in checked.stdout
