"""How jobs look on the wire: one representation for the API and the CLIs' local mode."""

from __future__ import annotations

from dataclasses import fields

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exports.models import Job, JobLog
from exports.pipeline.options import OPTIONS
from exports.pipeline.progress import ProgressSnapshot

# A job's options as the API shows them when its row lacks one (exports.pipeline.options).
_DEFAULT = {option.name: option.api_default for option in OPTIONS}

# The schema's field for each type a ProgressSnapshot field has.
_PROGRESS_TYPES = {
    "float": serializers.FloatField,
    "str": serializers.CharField,
    "int": serializers.IntegerField,
    "float | None": lambda: serializers.FloatField(allow_null=True),
}
# ``progress`` as the schema shows it: ProgressSnapshot's fields, in its order.
ProgressSerializer = type(
    "ProgressSerializer",
    (serializers.Serializer,),
    {item.name: _PROGRESS_TYPES[str(item.type)]() for item in fields(ProgressSnapshot)},
)


class JobSerializer(serializers.ModelSerializer):
    vcenter = serializers.SlugRelatedField(slug_field="name", read_only=True)
    format = serializers.CharField(source="options.format", default=_DEFAULT["format"], read_only=True)
    compress = serializers.BooleanField(source="options.compress", default=False, read_only=True)
    manifest = serializers.BooleanField(source="options.manifest", default=False, read_only=True)
    manifest_target = serializers.CharField(
        source="options.manifest_target", default=_DEFAULT["manifest_target"], read_only=True
    )
    convert = serializers.BooleanField(source="options.convert", default=False, read_only=True)
    verify = serializers.BooleanField(source="options.verify", default=False, read_only=True)
    progress = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    status_detail = serializers.CharField(
        read_only=True,
        help_text='"files missing" when a completed export\'s files were removed since; else ""',
    )
    missing_files = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="those files' paths"
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "vm_path",
            "vcenter",
            "output_path",
            "format",
            "compress",
            "manifest",
            "manifest_target",
            "convert",
            "verify",
            "options",
            "status",
            "status_detail",
            "missing_files",
            "origin",
            "progress",
            "result",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "heartbeat_at",
            "worker",
            "cancel_requested",
        ]
        read_only_fields = fields

    def to_representation(self, job: Job) -> dict:
        """The fields above, built directly: DRF's per-field path costs more than the query
        itself on a page of 100 jobs (bench/api.py). The declared fields stay the schema."""
        options = job.options
        missing = job.missing_files
        return {
            "id": job.id,
            "vm_path": job.vm_path,
            "vcenter": job.vcenter.name if job.vcenter_id else None,
            "output_path": job.output_path,
            "format": options.get("format", _DEFAULT["format"]),
            "compress": bool(options.get("compress")),
            "manifest": bool(options.get("manifest")),
            "manifest_target": options.get("manifest_target", _DEFAULT["manifest_target"]),
            "convert": bool(options.get("convert")),
            "verify": bool(options.get("verify")),
            "options": options,
            "status": job.status,
            "status_detail": "files missing" if missing else "",
            "missing_files": missing,
            "origin": job.origin,
            "progress": job.progress,
            "result": job.result,
            "error": job.error,
            "created_at": _iso(job.created_at),
            "started_at": _iso(job.started_at),
            "finished_at": _iso(job.finished_at),
            "duration_seconds": job.duration_seconds,
            "heartbeat_at": _iso(job.heartbeat_at),
            "worker": job.worker,
            "cancel_requested": job.cancel_requested,
        }

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, job: Job) -> dict:
        # A plain dict: a nested serializer per job costs more than the whole query (bench/api.py).
        return job.progress


def _iso(moment) -> str | None:
    """As DRF renders datetimes: ISO 8601 with Z for UTC."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class JobLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobLog
        fields = ["id", "at", "level", "message"]


class SubmitResultSerializer(serializers.Serializer):
    job_ids = serializers.ListField(child=serializers.CharField())
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.DictField())


class CancelResultSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    status = serializers.CharField()
    cancel_requested = serializers.BooleanField()
