"""The inventory API: ``GET /vms``, ``GET /vms/{ref}`` and ``POST /vms/preflight``. Each view
reads its input, calls ``inventory.service`` (or preflight) and renders the records.

Errors are mapped once (``hypersdk.api_errors``): an unknown VM is a 404, a bad filter a 400,
vCenter unreachable a 502 ``{"detail": ...}``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from exports.job_spec import JobSpecSerializer
from exports.limits import MAX_PAGE
from hypersdk.lib.permissions import NO_ROLE, can_view
from hypersdk.openapi import ERROR
from inventory import service
from inventory.api.serializers import (
    PreflightReportSerializer,
    VMDetailQuery,
    VMListQuery,
    VMPageSerializer,
    VMPagination,
    VMSerializer,
    vm_answer,
)
from inventory.records import POWER_STATES

UNREACHABLE = OpenApiResponse(ERROR, description="the vCenter could not be reached or logged into")
VCENTER_PARAMETER = OpenApiParameter(
    "vcenter", str, description="a vCenter's name in the daemon (default: the daemon's GOVC_*)"
)
REFRESH_PARAMETER = OpenApiParameter(
    "refresh", bool, description="read the inventory from vCenter again instead of from the cache"
)


class AnyRole(BasePermission):
    """Viewers may call it as well as operators, whatever the method: the inventory and a
    preflight only read (a preflight connects to vCenter, but changes nothing)."""

    message = NO_ROLE

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) and can_view(request.user)


class VMListView(APIView):
    """The VMs of a vCenter by inventory path, filtered and paged as ``/jobs/query``."""

    pagination = VMPagination()

    @extend_schema(
        operation_id="vms_list",
        parameters=[
            VCENTER_PARAMETER,
            OpenApiParameter("q", str, description="part of the name or inventory path (any case)"),
            OpenApiParameter("folder", str, description="an inventory folder: the VMs in it or below"),
            OpenApiParameter("power_state", str, enum=POWER_STATES),
            OpenApiParameter("guest_os", str, description="part of the configured or detected guest OS"),
            OpenApiParameter("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": service.MAX_PAGE_SIZE},
                description=f"VMs per page (default {service.DEFAULT_PAGE_SIZE})",
            ),
            REFRESH_PARAMETER,
        ],
        responses={
            200: VMPageSerializer,
            404: OpenApiResponse(ERROR, description="no such page"),
            502: UNREACHABLE,
        },
    )
    def get(self, request: Request) -> Response:
        query = VMListQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        page = self.pagination.page_number(request)
        page_size = self.pagination.get_page_size(request)
        found = service.list_vms(**query.validated_filters(), page=page, page_size=page_size)
        pages = max(1, -(-found.count // page_size))
        if page > pages:
            raise NotFound(
                self.pagination.invalid_page_message.format(
                    page_number=page, message="That page contains no results"
                )
            )
        url = request.build_absolute_uri()
        # The next pages come from the cache just filled: never ask vCenter again for them.
        url = remove_query_param(url, "refresh")
        body = {
            "count": found.count,
            "next": replace_query_param(url, "page", page + 1) if page < pages else None,
            "previous": _previous(url, page),
            "results": [record.summary() for record in found.results],
            "vcenter": found.vcenter or None,
            "cached_at": found.cached_at,
        }
        return Response(body)


def _previous(url: str, page: int) -> str | None:
    if page == 1:
        return None
    return remove_query_param(url, "page") if page == 2 else replace_query_param(url, "page", page - 1)


class VMDetailView(APIView):
    """One VM by inventory path (``dc/vm/prod/web01``; a ``/`` in a name is ``%2f``, sent as
    ``%252f``) or managed object id (``vm-42``), with its disks, NICs and drives."""

    @extend_schema(
        parameters=[VCENTER_PARAMETER, REFRESH_PARAMETER],
        responses={200: VMSerializer, 502: UNREACHABLE},
    )
    def get(self, request: Request, ref: str) -> Response:
        query = VMDetailQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        filters = query.validated_filters()
        record = service.get_vm(ref, vcenter=filters["vcenter"], refresh=filters["refresh"])
        return Response(vm_answer(record, filters["vcenter"]))


class PreflightView(APIView):
    """What exporting this job spec would meet, checked now: the findings, blockers first."""

    permission_classes = [AnyRole]

    @extend_schema(request=JobSpecSerializer, responses={200: PreflightReportSerializer})
    def post(self, request: Request) -> Response:
        from inventory import preflight  # it loads the pipeline's checks

        return Response(preflight.preflight_spec(request.data, origin="api").as_dict())
