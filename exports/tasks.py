"""Celery tasks: thin adapters over the job service and runner; they take plain ids."""

from __future__ import annotations

from celery import shared_task, signals

from exports import job_queue, job_runner, retention
from hypersdk.lib import log_context


@shared_task(name="exports.tasks.run_export_job", ignore_result=True)
def run_export_job(job_id: str) -> str | None:
    return job_runner.run_job(job_id)


@shared_task(name="exports.tasks.reap_lost_jobs", ignore_result=True)
def reap_lost_jobs() -> list[str]:
    return job_queue.reap_lost_jobs()


@shared_task(name="exports.tasks.dispatch_pending_jobs", ignore_result=True)
def dispatch_pending_jobs() -> int:
    return job_queue.dispatch_pending()


@shared_task(name="exports.tasks.purge_old_jobs", ignore_result=True)
def purge_old_jobs() -> int:
    return retention.purge_expired_jobs().jobs


# Celery's own lines about the run (its "succeeded in 12.3s" too) carry the job id as well.
@signals.task_prerun.connect
def _enter_job_log_context(sender=None, args=(), kwargs=None, **extra) -> None:
    if getattr(sender, "name", "") == job_queue.RUN_TASK:
        log_context.enter_job(str(args[0] if args else (kwargs or {}).get("job_id", log_context.NO_JOB)))


@signals.task_postrun.connect
def _leave_job_log_context(sender=None, **extra) -> None:
    if getattr(sender, "name", "") == job_queue.RUN_TASK:
        log_context.leave_job()
