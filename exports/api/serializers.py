"""How jobs look on the wire: one representation for the API and the CLIs' local mode."""

from __future__ import annotations

from rest_framework import serializers

from exports.models import Job, JobLog


class ProgressSerializer(serializers.Serializer):
    percent = serializers.FloatField()
    phase = serializers.CharField()
    current_file = serializers.CharField()
    bytes_done = serializers.IntegerField()
    bytes_total = serializers.IntegerField()
    rate_bps = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True)


class JobSerializer(serializers.ModelSerializer):
    vcenter = serializers.SlugRelatedField(slug_field="name", read_only=True)
    format = serializers.SerializerMethodField()
    compress = serializers.SerializerMethodField()
    manifest = serializers.SerializerMethodField()
    manifest_target = serializers.SerializerMethodField()
    convert = serializers.SerializerMethodField()
    verify = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

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

    def get_format(self, job: Job) -> str:
        return job.options.get("format", "ovf")

    def get_compress(self, job: Job) -> bool:
        return bool(job.options.get("compress"))

    def get_manifest(self, job: Job) -> bool:
        return bool(job.options.get("manifest"))

    def get_manifest_target(self, job: Job) -> str:
        return job.options.get("manifest_target", "qcow2")

    def get_convert(self, job: Job) -> bool:
        return bool(job.options.get("convert"))

    def get_verify(self, job: Job) -> bool:
        return bool(job.options.get("verify"))

    def get_progress(self, job: Job) -> dict:
        return ProgressSerializer(job).data


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
