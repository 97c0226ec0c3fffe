"""A job as its page shows it: filtered history, its manifest, conversion report and files."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, time
from pathlib import Path

from django.utils import timezone

from exports import jobs
from exports.domain_file import DomainFileNotFound, read_domain_file, recorded_path
from exports.models import Job
from exports.output_roots import OutputOutsideRoots, resolve_output_path
from exports.pipeline.manifest import MANIFEST_NAME
from libvirt_domain.next_steps import next_commands

MAX_MANIFEST_BYTES = 1 << 20
LOG_TAIL = 500
# A job page lists this many of an export's files at most (a converter may write many).
MAX_LISTED_FILES = 1000


def filtered_jobs(filters: dict):
    """The history, newest first, by state, VM (substring) and creation date (local days)."""
    history = jobs.query_jobs(status=filters.get("status") or None, vm=filters.get("vm") or None)
    if filters.get("created_from"):
        history = history.filter(created_at__gte=_day_start(filters["created_from"]))
    # date.max has no next day to stop before, and every job was created by its end.
    if filters.get("created_to") and filters["created_to"] < date.max:
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
    """Every file the export left in its output directory, in the order the run made them: its
    artifacts (the package, manifest.json, reports), a directory such as ``converted/`` by the
    files in it. Each ``{path, name (relative to the output directory), size (bytes, None when
    gone), sha256 ("" when the export recorded none), missing}``; at most MAX_LISTED_FILES."""
    result = job.result or {}
    output = Path(str(result.get("output_dir") or job.output_path))
    known = _recorded_checksums(result, output)
    listed: dict[Path, dict] = {}
    for path in job.export_paths:
        for file in _files_at(path):
            if file not in listed and len(listed) < MAX_LISTED_FILES:
                listed[file] = _file_entry(file, output, known)
    return list(listed.values())


def _recorded_checksums(result: dict, output: Path) -> dict[Path, str]:
    """SHA-256 the export recorded, by path: the downloaded disks (by name in the output
    directory; one packed into an OVA is no file there, nor an artifact, so it is not listed)
    and the converted images."""
    sums = {output / str(f.get("name")): str(f.get("sha256") or "") for f in result.get("files") or []}
    for converted in (result.get("conversion") or {}).get("outputs") or []:
        sums[Path(str(converted.get("output")))] = str(converted.get("sha256") or "")
    return sums


def _files_at(path: Path) -> list[Path]:
    """``path`` itself, or the files under it if it is a directory (symbolic links not followed);
    a path that is gone is listed as it was recorded."""
    if not path.is_dir() or path.is_symlink():
        return [path]
    found = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        found += [Path(folder) / name for name in sorted(names)]
        if len(found) >= MAX_LISTED_FILES:
            break
    return found


def _file_entry(path: Path, output: Path, known: dict[Path, str]) -> dict:
    try:
        size: int | None = path.lstat().st_size
    except OSError:
        size = None
    name = str(path.relative_to(output)) if path.is_relative_to(output) else str(path)
    return {
        "path": str(path),
        "name": name,
        "size": size,
        "sha256": known.get(path, ""),
        "missing": size is None,
    }


def libvirt_domain(job: Job) -> dict | None:
    """The "libvirt domain" section of a completed job that wrote one (``-libvirt``): its plan as
    the conversion report records it (``conversion.libvirt_domain``), read defensively (a row
    is JSON anyone with the database could have edited), the next commands, and the XML itself
    (``xml``; "" with ``note`` saying why when it cannot be shown). None without a domain."""
    path = recorded_path(job)
    if job.status != Job.Status.COMPLETED or not path:
        return None
    conversion = (job.result or {}).get("conversion")
    plan = conversion.get("libvirt_domain") if isinstance(conversion, dict) else None
    plan = plan if isinstance(plan, dict) else {}
    name = _text(plan.get("name"))
    defined = _text(plan.get("defined"))
    try:
        xml, note = read_domain_file(job).text, ""
    except DomainFileNotFound as exc:
        xml, note = "", exc.reason
    return {
        "path": path,
        "name": name,
        "title": _text(plan.get("title")),
        "firmware": _text(plan.get("firmware")),
        "secure_boot": plan.get("secure_boot") is True,
        "machine": _text(plan.get("machine")),
        "disk_bus": _text(plan.get("disk_bus")),
        "disk_bus_reason": _text(plan.get("disk_bus_reason")),
        "nic_model": _text(plan.get("nic_model")),
        "nic_model_reason": _text(plan.get("nic_model_reason")),
        "disks": _dicts(plan.get("disks")),
        "nics": _dicts(plan.get("nics")),
        "warnings": [_text(warning) for warning in _list(plan.get("warnings"))],
        "validated_by": _text(plan.get("validated_by")),
        "defined": defined,
        "define_error": _text(plan.get("define_error")),
        # Nothing to run for a file that is not this job's any more (another export's since).
        "commands": next_commands(path, name, defined or None, _text(plan.get("define_uri")) or None)
        if xml
        else [],
        "xml": xml,
        "note": note,
    }


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _dicts(value: object) -> list[dict]:
    return [item for item in _list(value) if isinstance(item, dict)]


def job_page(job: Job) -> dict:
    manifest, manifest_note = read_manifest(job) if job.status == Job.Status.COMPLETED else (None, "")
    conversion = (job.result or {}).get("conversion")
    return {
        "domain": libvirt_domain(job),
        "job": job,
        "manifest": manifest,
        "manifest_note": manifest_note,
        "conversion": conversion,
        "conversion_json": json.dumps(conversion, indent=2) if conversion else "",
        "files": output_files(job),
        "logs": jobs.job_logs(job.id, tail=LOG_TAIL),
    }
