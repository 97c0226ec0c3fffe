"""A schedule really fires through a real Celery beat and worker at the minute NEXT RUN showed,
and its job completes: day-of-week written with 7 for Sunday, in a time zone with DST."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from exports.models import Job
from schedules import service
from schedules.models import ScheduleRun
from schedules.spec import ScheduleSpecSerializer
from tests.conftest import APP01, wait_for

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]


def todays_expression(zone: ZoneInfo) -> str:
    """``M H * * D-7`` for the next minute at least 15 s away, ``D`` the weekday it falls on
    (Sunday: just ``7``): any day of the week, it fires today and reads 7 as Sunday."""
    target = (datetime.now(zone) + timedelta(seconds=75)).replace(second=0, microsecond=0)
    weekday = target.isoweekday() % 7  # cron numbering: Sunday 0
    days = f"{weekday}-7" if weekday else "7"
    return f"{target.minute} {target.hour} * * {days}"


def test_a_day_of_week_7_schedule_in_a_dst_zone_fires_through_beat_at_its_next_run(
    celery_worker, worker_environment, app01_seeds, export_root, tmp_path
):
    berlin = ZoneInfo("Europe/Berlin")
    spec = ScheduleSpecSerializer(
        data={
            "name": "weekdays-to-sunday",
            "cron": todays_expression(berlin),
            "timezone": "Europe/Berlin",
            "vm_path": APP01,
            "output_path": str(export_root),
        }
    )
    assert spec.is_valid(), spec.errors
    schedule = service.create_schedule(spec.validated_data)
    promised = schedule.next_run_at
    assert promised - timezone.now() < timedelta(seconds=76)
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
                timeout=150,
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
    # Fired at the minute NEXT RUN showed, by the minute tick of that very minute.
    assert run.slot == promised and promised <= run.created_at < promised + timedelta(minutes=1)
    assert job.status == "completed", job.error
    assert job.origin == "schedule"
    assert job.output_path == f"{export_root}/weekdays-to-sunday-{run.schedule_id}-{promised:%Y%m%d-%H%M%S}"
    assert (export_root / job.output_path.rsplit("/", 1)[-1] / "app01.ovf").exists()
