"""The jobs API at the guide's paths; each view translates HTTP and calls the job service."""

from __future__ import annotations

from datetime import datetime

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exports import daemon_status, domain_file, jobs
from exports.api.serializers import (
    CancelResultSerializer,
    JobLogSerializer,
    JobSerializer,
    SubmitResultSerializer,
)
from exports.job_spec import JobSpecSerializer
from exports.models import Job
from hypersdk.lib.lookup_text import can_match

# Log ids are 64-bit: longer digit strings cannot name one (and overflow SQLite).
MAX_LOG_ID_DIGITS = 18
TAIL_SCHEMA = {"type": "integer", "minimum": 0, "maximum": jobs.MAX_TAIL}
SINCE_SCHEMA = {
    "oneOf": [
        {"type": "string", "pattern": f"^[0-9]{{1,{MAX_LOG_ID_DIGITS}}}$"},
        {"type": "string", "format": "date-time"},
    ]
}


class JobSubmitView(APIView):
    """Submit one job, or a batch as ``{"jobs": [...]}``."""

    @extend_schema(
        request=JobSpecSerializer, responses={202: SubmitResultSerializer, 400: SubmitResultSerializer}
    )
    def post(self, request: Request) -> Response:
        try:
            data = request.data
        except ParseError as exc:
            # "detail" too, as every other unparsable body in the API answers.
            return _rejected({"non_field_errors": [str(exc.detail)]}, detail=str(exc.detail))
        batch = isinstance(data, dict) and "jobs" in data
        if batch:
            if set(data) != {"jobs"} or not isinstance(data["jobs"], list) or not data["jobs"]:
                return _rejected({"jobs": ["must be a non-empty list of jobs, and the only field"]})
            specs = data["jobs"]
        else:
            specs = [data]
        result = jobs.submit_jobs(specs, origin=Job.Origin.API)
        if not result.accepted:
            body = result.as_dict() if batch else {**result.errors[0]["errors"], **result.as_dict()}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(result.as_dict(), status=status.HTTP_202_ACCEPTED)


def _rejected(errors: dict[str, list[str]], **extra: str) -> Response:
    """A 400 in the shape of every other submit answer: the field errors beside the counts."""
    body = {**extra, **errors, "job_ids": [], "accepted": 0, "rejected": 1}
    body["errors"] = [{"index": 0, "errors": errors}]
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


class JobQueryView(generics.ListAPIView):
    """Jobs, newest first, filtered by ``status``, ``id``, ``vm`` or ``id_prefix``."""

    serializer_class = JobSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[*Job.Status.values, "all"]),
            OpenApiParameter("id", str),
            OpenApiParameter("vm", str, description="part of the VM path"),
            OpenApiParameter("id_prefix", str, description="jobs whose id starts with this"),
        ]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        status_filter = params.get("status")
        if status_filter is not None and status_filter not in (*Job.Status.values, "all"):
            raise ValidationError({"status": [f"must be one of {', '.join(Job.Status.values)}, all"]})
        for name in ("id", "vm", "id_prefix"):
            if params.get(name) and not can_match(params[name]):
                raise ValidationError({name: ["must not hold NUL characters"]})
        return jobs.query_jobs(
            status=status_filter,
            job_id=params.get("id"),
            vm=params.get("vm"),
            id_prefix=params.get("id_prefix"),
        )


class JobDetailView(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(JobSerializer(jobs.get_job(job_id)).data)


class FileOrJSONErrors(DefaultContentNegotiation):
    """A download is its file whatever the client accepts; its errors are JSON (never a 406)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class JobLibvirtDomainView(APIView):
    """The job's libvirt domain file (``-libvirt``), as an attachment. Only the file the job
    recorded, in its own output directory, is read: anything else is a 404."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = FileOrJSONErrors

    @extend_schema(
        responses={
            (200, "application/xml"): OpenApiResponse(
                OpenApiTypes.STR, description="the domain XML, as an attachment (<name>.xml)"
            )
        }
    )
    def get(self, request: Request, job_id: str):
        return domain_file.as_download(domain_file.read_domain_file(jobs.get_job(job_id)))


class JobLogsView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("tail", TAIL_SCHEMA, description="only the last N lines"),
            OpenApiParameter(
                "since", SINCE_SCHEMA, description="a log id (lines after it) or an ISO 8601 time"
            ),
        ],
        responses=inline_serializer(
            "JobLogs", {"job_id": serializers.CharField(), "logs": JobLogSerializer(many=True)}
        ),
    )
    def get(self, request: Request, job_id: str) -> Response:
        tail = _int_param(request, "tail", minimum=0, maximum=jobs.MAX_TAIL)
        since = _since_param(request)
        entries = jobs.job_logs(job_id, tail=tail, since=since)
        return Response({"job_id": job_id, "logs": JobLogSerializer(entries, many=True).data})


class JobCancelView(APIView):
    @extend_schema(request=None, responses={200: CancelResultSerializer, 409: CancelResultSerializer})
    def post(self, request: Request, job_id: str) -> Response:
        try:
            job = jobs.cancel_job(job_id)
        except jobs.JobAlreadyFinished as exc:  # a 409 that also says where the job ended
            body = {"job_id": job_id, "status": exc.job.status, "cancel_requested": False, "detail": str(exc)}
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response({"job_id": job.id, "status": job.status, "cancel_requested": job.cancel_requested})


class StatusView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(daemon_status.daemon_status())


class HealthView(APIView):
    """For load balancers and probes: no authentication, no detail."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=inline_serializer("Health", {"status": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


def _int_param(request: Request, name: str, *, minimum: int, maximum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    # ASCII digits only: int() also reads " 3", "+3", "1_0" and other scripts' digits.
    if not (raw.isascii() and raw.isdigit() and len(raw.lstrip("0")) <= len(str(maximum))):
        raise ValidationError({name: [f"must be an integer between {minimum} and {maximum}"]})
    value = int(raw.lstrip("0") or "0")
    if not minimum <= value <= maximum:
        raise ValidationError({name: [f"must be an integer between {minimum} and {maximum}"]})
    return value


def _since_param(request: Request) -> int | datetime | None:
    raw = request.query_params.get("since")
    if raw in (None, ""):
        return None
    if raw.isascii() and raw.isdigit():
        if len(raw) > MAX_LOG_ID_DIGITS:
            raise ValidationError({"since": [f"a log id has at most {MAX_LOG_ID_DIGITS} digits"]})
        return int(raw)
    try:
        moment = parse_datetime(raw)
    except ValueError:  # well formed but impossible, e.g. a 13th month
        moment = None
    if moment is None:
        raise ValidationError({"since": ["must be a log id or an ISO 8601 time"]})
    return moment
