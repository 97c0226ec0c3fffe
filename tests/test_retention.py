"""Retention of job history: old finished jobs go (with their logs), everything else stays;
export files only with the option, and only what the jobs made inside the export roots."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone

from exports import jobs, retention
from exports.models import Job, JobLog
from exports.tasks import purge_old_jobs
from hypersdk.lib import events
from metrics import recording
from schedules.models import Schedule, ScheduleRun
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def aged_job(status: str, age_days: float, output: Path | str = "/exports/nowhere", **fields) -> Job:
    """A job finished (or created) `age_days` ago, with one log line."""
    at = timezone.now() - timedelta(days=age_days)
    finished = at if status in Job.FINISHED else None
    job = make_job(
        "/dc/vm/prod/app01",
        str(output),
        status=status,
        created_at=at - timedelta(minutes=5),
        started_at=at - timedelta(minutes=4) if status != "pending" else None,
        finished_at=finished,
        **fields,
    )
    JobLog.objects.create(job=job, message="a line")
    return job


def exists(job: Job) -> bool:
    return Job.objects.filter(id=job.id).exists()


def output_dir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    (path / "app01-disk1.vmdk").write_bytes(b"disk")
    return path


def test_old_finished_jobs_go_with_their_logs_and_recent_ones_stay():
    old = [aged_job(status, 40) for status in ("completed", "failed", "cancelled")]
    recent = aged_job("completed", 10)
    result = retention.purge_jobs(30)
    assert result.jobs == 3
    assert not any(exists(job) for job in old)
    assert exists(recent)
    assert not JobLog.objects.filter(job_id__in=[job.id for job in old]).exists()
    assert JobLog.objects.filter(job_id=recent.id).count() == 1


def test_pending_and_running_jobs_are_never_deleted_however_old():
    pending, running = aged_job("pending", 400), aged_job("running", 400)
    assert retention.purge_jobs(0).jobs == 0
    assert exists(pending) and exists(running)


def test_schedule_runs_stay_without_their_deleted_job():
    job = aged_job("completed", 40)
    schedule = Schedule.objects.create(name="nightly", cron="0 2 * * *", job_template={}, last_job=job)
    run = ScheduleRun.objects.create(schedule=schedule, slot=job.created_at, outcome="started", job=job)
    retention.purge_jobs(30)
    run.refresh_from_db()
    schedule.refresh_from_db()
    assert run.job_id is None and schedule.last_job_id is None


def test_export_files_are_kept_unless_asked(export_root):
    output = output_dir(export_root, "app01")
    aged_job("completed", 40, output, output_created=True)
    result = retention.purge_jobs(30)
    assert result.jobs == 1 and result.removed_outputs == []
    assert (output / "app01-disk1.vmdk").read_bytes() == b"disk"


def test_delete_files_removes_only_what_old_jobs_made_inside_an_export_root(
    export_root, export_roots_base, tmp_path
):
    made = output_dir(export_root, "made")
    preexisting = output_dir(export_root, "preexisting")  # the job wrote into a directory it found
    shared = output_dir(export_root, "shared")  # a job that stays writes there too
    outside = output_dir(tmp_path, "outside")  # not under any export root (a root was removed since)
    aged_job("completed", 40, made, output_created=True)
    aged_job("failed", 40, preexisting, output_created=False)
    aged_job("completed", 40, shared, output_created=True)
    aged_job("completed", 2, shared, output_created=False)
    aged_job("completed", 40, outside, output_created=True)
    aged_job("completed", 40, export_roots_base, output_created=True)  # a root itself: never
    aged_job("completed", 40, export_root, output_created=True)  # holds the output of a job that stays

    result = retention.purge_jobs(30, delete_files=True)
    assert result.jobs == 6
    assert result.removed_outputs == [str(made)]
    assert not made.exists()
    kept = (preexisting, shared, outside, export_roots_base, export_root)
    assert all(path.is_dir() for path in kept)
    assert sorted(result.kept_outputs) == sorted(str(path) for path in kept)


def test_a_dry_run_deletes_nothing(export_root):
    output = output_dir(export_root, "app01")
    job = aged_job("completed", 40, output, output_created=True)
    result = retention.purge_jobs(30, delete_files=True, dry_run=True)
    assert (result.jobs, result.removed_outputs) == (1, [str(output)])
    assert exists(job) and output.is_dir()


def test_metrics_counters_survive_the_purge(settings):
    events.subscribe(recording.on_event)  # another module's test may have cleared the subscribers
    settings.HYPERSDK_METRICS_PUBLIC = True
    for _ in range(3):
        job = make_job("/dc/vm/prod/app01", "/exports/x")
        jobs.cancel_job(job.id)  # the real event path: job.cancelled counted by the subscriber
    Job.objects.update(finished_at=timezone.now() - timedelta(days=100))
    before = Client().get("/metrics").content.decode()
    assert "hypersdk_exports_cancelled_total 3.0" in before
    assert retention.purge_jobs(30).jobs == 3
    after = Client().get("/metrics").content.decode()
    assert "hypersdk_exports_cancelled_total 3.0" in after


# ---- the daily task and the command -----------------------------------------------------------


def test_the_daily_clean_up_follows_the_settings(settings, export_root):
    assert django_settings.CELERY_BEAT_SCHEDULE["purge-old-jobs"] == {
        "task": "exports.tasks.purge_old_jobs",
        "schedule": 24 * 3600.0,
    }
    output = output_dir(export_root, "app01")
    job = aged_job("completed", 100, output, output_created=True)
    settings.HYPERSDK_JOB_RETENTION_DAYS = 0  # keep forever
    assert purge_old_jobs() == 0 and exists(job)
    settings.HYPERSDK_JOB_RETENTION_DAYS = 90
    assert purge_old_jobs() == 1 and not exists(job)
    assert output.is_dir()  # files kept: HYPERSDK_JOB_RETENTION_DELETE_FILES is off

    job = aged_job("completed", 100, output, output_created=True)
    with override_settings(HYPERSDK_JOB_RETENTION_DELETE_FILES=True):
        assert purge_old_jobs() == 1
    assert not output.exists()


def test_purge_jobs_command_prints_a_summary(export_root):
    output = output_dir(export_root, "app01")
    aged_job("completed", 40, output, output_created=True)
    aged_job("completed", 5)
    out = StringIO()
    call_command("purge_jobs", "--older-than", "30", "--dry-run", "--delete-files", stdout=out)
    assert out.getvalue().splitlines() == [
        f"would remove {output}",
        "would delete 1 finished jobs older than 30 days; would remove 1 output directories, kept 0",
    ]
    out = StringIO()
    call_command("purge_jobs", "--older-than", "30", stdout=out)
    assert out.getvalue() == "deleted 1 finished jobs older than 30 days\n"
    assert Job.objects.count() == 1 and output.is_dir()


def test_purge_jobs_command_refuses_a_negative_age():
    with pytest.raises(CommandError, match="a whole number from 0 to 36500"):
        call_command("purge_jobs", "--older-than", "-1", stdout=StringIO())
