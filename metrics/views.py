"""``GET /metrics``: Prometheus text for django-prometheus' metrics and ours.

It needs the API token of a user who may read the API (``Authorization: Token <t>`` or
``Bearer <t>``, as Prometheus' ``authorization`` setting sends it) unless
``HYPERSDK_METRICS_PUBLIC`` is set.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from api_tokens.authentication import BearerTokenAuthentication, TokenAuthentication
from hypersdk.lib.permissions import HyperSDKRole


class PlainTextRenderer(BaseRenderer):
    """Renders the errors of this endpoint (401, 403) as one line of text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, dict) and "detail" in data:
            data = data["detail"]
        return f"{data}\n".encode()


@extend_schema(exclude=True)
class MetricsView(APIView):
    authentication_classes = [TokenAuthentication, BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [HyperSDKRole]
    renderer_classes = [PlainTextRenderer]

    def get_authenticators(self):
        return [] if settings.HYPERSDK_METRICS_PUBLIC else super().get_authenticators()

    def get_permissions(self):
        return [] if settings.HYPERSDK_METRICS_PUBLIC else super().get_permissions()

    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
