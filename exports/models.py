"""Export jobs, their logs, and the vCenters they export from."""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from exports.pipeline.progress import PROGRESS_FIELDS
from hypersdk.lib.encryption import decrypt, encrypt
from hypersdk.lib.redaction import url_has_credentials


def new_job_id() -> str:
    return f"job-{secrets.token_urlsafe(8)}"


class VCenter(models.Model):
    """A vCenter (or ESXi host) jobs may export from; its password is encrypted at rest."""

    name = models.SlugField(max_length=64, unique=True)
    url = models.CharField(max_length=512, help_text="https://host/sdk, or a host name")
    username = models.CharField(max_length=255)
    password_encrypted = models.TextField(blank=True, editable=False)
    insecure = models.BooleanField(default=False, help_text="skip TLS verification")
    ca_bundle = models.TextField(blank=True, help_text="PEM certificates to trust for this vCenter")

    class Meta:
        ordering = ["name"]
        verbose_name = "vCenter"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # A password in the URL would be stored and shown in plain text: it has its own field.
        if url_has_credentials(self.url):
            raise ValidationError(
                {"url": "no user name or password in the URL: put them in the username and password fields"}
            )
        # Nor in a query string or fragment (?password=...): a vCenter's URL needs neither.
        if "?" in self.url or "#" in self.url:
            raise ValidationError(
                {"url": "no query string or fragment in the URL: give https://host/sdk, or a host name"}
            )

    @property
    def password(self) -> str:
        return decrypt(self.password_encrypted) if self.password_encrypted else ""

    @password.setter
    def password(self, value: str) -> None:
        self.password_encrypted = encrypt(value) if value else ""


class Job(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Origin(models.TextChoices):
        CLI = "cli"
        API = "api"
        DASHBOARD = "dashboard"
        SCHEDULE = "schedule"

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
    # A job owns its output path exclusively while in one of these.
    ACTIVE = (Status.PENDING, Status.RUNNING)

    id = models.CharField(primary_key=True, max_length=32, default=new_job_id, editable=False)
    vm_path = models.CharField(max_length=1024)
    vcenter = models.ForeignKey(VCenter, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs")
    output_path = models.CharField(max_length=4096)
    # The export options as the engine takes them (format, compress, manifest, ...).
    options = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.API)

    phase = models.CharField(max_length=64, blank=True)
    percent = models.FloatField(default=0.0)
    current_file = models.CharField(max_length=512, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    rate_bps = models.FloatField(default=0.0)
    eta_seconds = models.FloatField(null=True, blank=True)

    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Whether the output directory did not exist when the job started: retention's delete_files
    # may then remove it (the reaper undoes a run by the pipeline's record instead).
    output_created = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return self.id

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def vcenter_key(self) -> str:
        """Jobs on the same vCenter share its concurrency limit."""
        return f"vcenter:{self.vcenter_id}" if self.vcenter_id else "vcenter:default"

    @property
    def export_paths(self) -> list[Path]:
        """What a completed export left: the run's artifacts (names in its output directory; a
        directory such as ``converted/`` as one path), then the converted images inside it;
        [] when the job did not complete or was a dry run. Read from the result, not the disk."""
        result = self.result
        if self.status != self.Status.COMPLETED or not isinstance(result, dict) or result.get("dry_run"):
            return []
        output = Path(str(result.get("output_dir") or self.output_path))
        names = result.get("artifacts")
        if isinstance(names, list) and names:
            paths = [output / str(name) for name in names]
        else:  # recorded before runs listed their files: the package and manifest at least
            paths = [Path(str(p)) for p in (result.get("package"), result.get("manifest_path")) if p]
        # The converted images (what the operator takes to KVM) live inside ``converted/``.
        conversion = result.get("conversion") or {}
        outputs = conversion.get("outputs") if isinstance(conversion, dict) else None
        paths += [Path(str(o["output"])) for o in outputs or [] if isinstance(o, dict) and o.get("output")]
        return paths

    @property
    def missing_files(self) -> list[str]:
        """Paths of a completed export's files no longer on disk (removed after the job ended);
        [] when all are there or the job did not complete. One stat per file, no cache: the
        files live on the daemon's disk and change without telling it."""
        return [str(path) for path in self.export_paths if not os.path.exists(path)]

    @property
    def status_detail(self) -> str:
        """What the status alone does not say: ``files missing`` for a completed job whose
        export was removed since; "" otherwise."""
        return "files missing" if self.missing_files else ""

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return round((end - self.started_at).total_seconds(), 1)

    @property
    def progress(self) -> dict[str, Any]:
        """``{percent, phase, current_file, bytes_done, bytes_total, rate_bps, eta_seconds}``."""
        return {name: getattr(self, name) for name in PROGRESS_FIELDS}

    def as_event(self) -> dict[str, Any]:
        """The job as every lifecycle event describes it, built once per change: webhooks,
        metrics, websockets and the log read this dict and never the row again.

        The API's names (``status``, ``output_path``, ``duration_seconds``); webhooks rename
        three of them to the receivers' documented ones (webhooks.payloads). JSON-able: times
        are ISO 8601 strings. Never a credential. Keys in the order webhook bodies show them.
        """
        result = self.result if isinstance(self.result, dict) else {}
        return {
            "job_id": self.id,
            "name": result.get("vm_name") or self.vm_path.rstrip("/").rsplit("/", 1)[-1],
            "vm_path": self.vm_path,
            "output_path": self.output_path,
            "status": self.status,
            "progress": self.progress,
            "error": self.error,
            "duration_seconds": self.duration_seconds,
            "files": result.get("files", []),
            "origin": self.origin,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def exported_bytes(event: dict[str, Any]) -> int:
    """What a job event (or its webhook payload: same keys) says the export wrote: its files'
    sizes, else the bytes downloaded so far."""
    files = event.get("files") or []
    total = sum(int(f.get("size") or 0) for f in files if isinstance(f, dict))
    return total or int((event.get("progress") or {}).get("bytes_done") or 0)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class JobLog(models.Model):
    """One line of a job's log; rows are only ever appended. The id orders them and is the
    cursor clients follow with ``since``."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, default="info")
    message = models.TextField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "id"])]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.id}"
