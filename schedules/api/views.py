"""The schedule API at the guide's paths; views translate HTTP and call the schedule service.
ScheduleNotFound (404) and ScheduleCannotRun (409) are answered by the API's exception handler."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from schedules import service
from schedules.api.serializers import ScheduleSerializer
from schedules.spec import ScheduleSpecSerializer


class ScheduleListView(generics.ListAPIView):
    """Schedules by name, paged as ``/jobs/query``: ``{count, next, previous, results}``."""

    serializer_class = ScheduleSerializer

    def get_queryset(self):
        return service.list_schedules()

    @extend_schema(request=ScheduleSpecSerializer, responses={201: ScheduleSerializer})
    def post(self, request: Request) -> Response:
        spec = ScheduleSpecSerializer(data=request.data)
        spec.is_valid(raise_exception=True)
        schedule = service.create_schedule(spec.validated_data)
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


class ScheduleDetailView(APIView):
    @extend_schema(responses=ScheduleSerializer)
    def get(self, request: Request, schedule_id: str) -> Response:
        return Response(ScheduleSerializer(service.get_schedule(schedule_id)).data)

    @extend_schema(request=ScheduleSpecSerializer, responses=ScheduleSerializer)
    def put(self, request: Request, schedule_id: str) -> Response:
        return self._update(request, schedule_id, partial=False)

    @extend_schema(request=ScheduleSpecSerializer, responses=ScheduleSerializer)
    def patch(self, request: Request, schedule_id: str) -> Response:
        return self._update(request, schedule_id, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, schedule_id: str) -> Response:
        service.delete_schedule(schedule_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request: Request, schedule_id: str, *, partial: bool) -> Response:
        schedule = service.get_schedule(schedule_id)
        spec = ScheduleSpecSerializer(schedule, data=request.data, partial=partial)
        spec.is_valid(raise_exception=True)
        return Response(ScheduleSerializer(service.update_schedule(schedule, spec.validated_data)).data)


class ScheduleEnableView(APIView):
    enabled = True

    @extend_schema(request=None, responses=ScheduleSerializer)
    def post(self, request: Request, schedule_id: str) -> Response:
        schedule = service.set_enabled(schedule_id, self.enabled)
        return Response(ScheduleSerializer(schedule).data)


class ScheduleDisableView(ScheduleEnableView):
    enabled = False


class ScheduleTriggerView(APIView):
    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "Triggered", {"schedule_id": serializers.CharField(), "job_id": serializers.CharField()}
            ),
            409: inline_serializer("CannotRun", {"detail": serializers.CharField()}),
        },
    )
    def post(self, request: Request, schedule_id: str) -> Response:
        job = service.trigger(schedule_id)
        return Response({"schedule_id": schedule_id, "job_id": job.id}, status=status.HTTP_202_ACCEPTED)
