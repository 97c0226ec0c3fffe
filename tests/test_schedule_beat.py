"""A `* * * * *` schedule really fires through a real Celery beat and worker, and its job completes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exports.models import Job
from schedules import service
from schedules.models import ScheduleRun
from schedules.spec import ScheduleSpecSerializer
from tests.conftest import APP01, wait_for

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]


def test_every_minute_schedule_fires_through_beat_and_completes(
    celery_worker, worker_environment, app01_seeds, export_root, tmp_path
):
    spec = ScheduleSpecSerializer(
        data={"name": "every-minute", "cron": "* * * * *", "vm_path": APP01, "output_path": str(export_root)}
    )
    assert spec.is_valid(), spec.errors
    schedule = service.create_schedule(spec.validated_data)
    log = tmp_path / "beat.log"
    with open(log, "wb") as out:
        beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hypersdk",
                "beat",
                "-l",
                "info",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile",
                str(tmp_path / "beat.pid"),
                "-s",
                str(tmp_path / "beat-schedule"),
            ],  # fmt: skip
            env=worker_environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            run = wait_for(
                lambda: ScheduleRun.objects.filter(schedule=schedule, job__isnull=False).first(),
                timeout=180,
                message="beat to fire the schedule",
            )
        except BaseException:
            print(log.read_text()[-3000:])
            raise
        job = wait_for(
            lambda: Job.objects.filter(id=run.job_id, status__in=Job.FINISHED).first(), message="the job"
        )
    finally:
        beat.terminate()
        beat.wait(30)
    assert job.status == "completed", job.error
    assert job.origin == "schedule"
    assert job.output_path.startswith(f"{export_root}/every-minute-")
    assert (export_root / job.output_path.rsplit("/", 1)[-1] / "app01.ovf").exists()
