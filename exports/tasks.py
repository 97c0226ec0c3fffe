"""Celery tasks: thin adapters over the job service and runner; they take plain ids."""

from __future__ import annotations

from celery import shared_task

from exports import job_runner, jobs


@shared_task(name="exports.tasks.run_export_job", ignore_result=True)
def run_export_job(job_id: str) -> str | None:
    return job_runner.run_job(job_id)


@shared_task(name="exports.tasks.reap_lost_jobs", ignore_result=True)
def reap_lost_jobs() -> list[str]:
    return jobs.reap_lost_jobs()


@shared_task(name="exports.tasks.dispatch_pending_jobs", ignore_result=True)
def dispatch_pending_jobs() -> int:
    return jobs.dispatch_pending()
