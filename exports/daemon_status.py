"""What `GET /status` and `hyperctl status` report: health, uptime, jobs, workers, the machine."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import psutil
from django.conf import settings
from django.db import connection

import hypersdk
from exports import jobs
from exports.models import Job
from hypersdk.lib.daemon_record import daemon_uptime_seconds


def _workers_alive(timeout: float) -> list[str]:
    from hypersdk.celery import app

    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception:  # noqa: BLE001 - a broker that is down means no worker answers
        return []
    return sorted(name for reply in replies for name in reply)


def _export_roots() -> list[dict[str, Any]]:
    roots = []
    for root in settings.HYPERSDK_EXPORT_ROOTS:
        entry: dict[str, Any] = {"path": root, "exists": os.path.isdir(root)}
        if entry["exists"]:
            usage = shutil.disk_usage(root)
            entry.update(free_bytes=usage.free, total_bytes=usage.total)
        roots.append(entry)
    return roots


def uptime_seconds(*, serving: bool) -> float | None:
    """The daemon's uptime: hypervisord's, from its record in the data dir (every process on the
    machine reads the same); without one, the serving process's own (daphne run on its own).
    None for a CLI (``serving=False``) when no daemon runs here."""
    recorded = daemon_uptime_seconds(settings.DATA_DIR)
    if recorded is not None or not serving:
        return recorded
    return round(time.time() - psutil.Process().create_time(), 1)


def daemon_status(*, ping_timeout: float = 0.5, serving: bool = True) -> dict[str, Any]:
    """What ``GET /status`` answers; ``serving`` False when a CLI asks (its own uptime is no
    daemon's)."""
    memory = psutil.virtual_memory()
    counts = jobs.counts_by_status()
    active = list(
        Job.objects.filter(status=Job.Status.RUNNING)
        .order_by("started_at")
        .values("id", "vm_path", "percent", "phase", "worker")
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {
        "health": "ok",
        "version": hypersdk.__version__,
        "uptime_seconds": uptime_seconds(serving=serving),
        "jobs": counts,
        "active_jobs": active,
        "workers": _workers_alive(ping_timeout),
        "max_concurrent_exports": settings.HYPERSDK_MAX_CONCURRENT_EXPORTS,
        "system": {
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpu_count": os.cpu_count(),
            "memory_total_bytes": memory.total,
            "memory_available_bytes": memory.available,
            "memory_percent": memory.percent,
        },
        "export_roots": _export_roots(),
        "database": connection.vendor,
    }
