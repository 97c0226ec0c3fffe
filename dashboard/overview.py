"""What the Dashboard tab shows: active jobs, counts, recent failures, the running count (the
rest of the Daemon card comes lazily: asking the workers takes a moment)."""

from __future__ import annotations

from datetime import datetime, time

from django.conf import settings
from django.utils import timezone

from exports import jobs
from exports.models import Job

RECENT_FAILURES = 10


def start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def active_jobs():
    return Job.objects.filter(status__in=(Job.Status.RUNNING, Job.Status.PENDING)).order_by(
        "-status", "started_at", "created_at"
    )  # running first ("running" > "pending"), oldest first


def overview() -> dict:
    all_time = jobs.counts_by_status()
    today = jobs.counts_by_status(since=start_of_today())
    return {
        "active_jobs": active_jobs(),
        "counts": [(status, today[status], all_time[status]) for status in Job.Status.values],
        "total_today": sum(today.values()),
        "total_all_time": sum(all_time.values()),
        "recent_failures": jobs.query_jobs(status=Job.Status.FAILED)[:RECENT_FAILURES],
        # The Daemon card's "Running": the same count as the table's, so both change together.
        "running": all_time[Job.Status.RUNNING],
        "max_concurrent_exports": settings.HYPERSDK_MAX_CONCURRENT_EXPORTS,
    }
