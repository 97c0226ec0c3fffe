"""A job as its page shows it: filtered history, its manifest, conversion report and files."""

from __future__ import annotations

import json
import os
from datetime import datetime, time
from pathlib import Path

from django.utils import timezone

from exports import jobs
from exports.models import Job
from exports.output_roots import OutputOutsideRoots, resolve_output_path
from exports.pipeline.manifest import MANIFEST_NAME

MAX_MANIFEST_BYTES = 1 << 20
LOG_TAIL = 500


def filtered_jobs(filters: dict):
    """The history, newest first, by state, VM (substring) and creation date (local days)."""
    history = jobs.query_jobs(status=filters.get("status") or None, vm=filters.get("vm") or None)
    if filters.get("created_from"):
        history = history.filter(created_at__gte=_day_start(filters["created_from"]))
    if filters.get("created_to"):
        history = history.filter(
            created_at__lt=_day_start(filters["created_to"]) + timezone.timedelta(days=1)
        )
    return history


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def read_manifest(job: Job) -> tuple[str | None, str]:
    """(pretty JSON, "") or (None, why not). Only a manifest.json inside an export root is read."""
    path = (job.result or {}).get("manifest_path")
    if not path:
        return None, "This job wrote no manifest."
    try:
        real = resolve_output_path(path)
    except OutputOutsideRoots:
        return None, f"{path} is outside the export roots."
    if real.name != MANIFEST_NAME or not real.is_file():
        return None, f"{path} is not there any more."
    if real.stat().st_size > MAX_MANIFEST_BYTES:
        return None, f"{path} is too large to show."
    try:
        return json.dumps(json.loads(real.read_text()), indent=2), ""
    except (OSError, ValueError) as exc:
        return None, f"{path} cannot be read: {exc}"


def output_files(job: Job) -> list[dict]:
    """The exported files then the converted disks, each with its size and SHA-256."""
    result = job.result or {}
    files = [
        {"path": os.path.join(result.get("output_dir", job.output_path), f["name"]), **f}
        for f in result.get("files", [])
    ]
    conversion = result.get("conversion") or {}
    for disk in conversion.get("outputs", []):
        files.append(
            {
                "path": disk["output"],
                "name": Path(disk["output"]).name,
                "size": disk["size"],
                "sha256": disk["sha256"],
            }
        )
    return files


def job_page(job: Job) -> dict:
    manifest, manifest_note = read_manifest(job) if job.status == Job.Status.COMPLETED else (None, "")
    conversion = (job.result or {}).get("conversion")
    return {
        "job": job,
        "manifest": manifest,
        "manifest_note": manifest_note,
        "conversion": conversion,
        "conversion_json": json.dumps(conversion, indent=2) if conversion else "",
        "files": output_files(job),
        "logs": jobs.job_logs(job.id, tail=LOG_TAIL),
    }
