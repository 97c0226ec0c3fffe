"""The webhook API at the guide's paths; ``{index}`` is the 0-based index or the webhook id.
WebhookNotFound, DeliveryNotFound (404) and InvalidWebhook (400) are answered by the API's
exception handler."""

from __future__ import annotations

from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webhooks import service
from webhooks.api.serializers import (
    CreatedWebhookSerializer,
    TestResultSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookSpecSerializer,
)
from webhooks.models import WebhookDelivery

INDEX = OpenApiParameter(
    "index", str, OpenApiParameter.PATH, description="0-based position in GET /webhooks, or the id (wh-...)"
)


class WebhookListView(generics.ListAPIView):
    """Webhooks in creation order, paged as ``/jobs/query``; each with its ``index``."""

    serializer_class = WebhookSerializer

    def get_queryset(self):
        return service.ordered_webhooks()

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        webhooks = service.with_indexes(page, start=self.paginator.page.start_index() - 1 if page else 0)
        return self.get_paginated_response(WebhookSerializer(webhooks, many=True).data)

    @extend_schema(request=WebhookSpecSerializer, responses={201: CreatedWebhookSerializer})
    def post(self, request: Request) -> Response:
        spec = WebhookSpecSerializer(data=request.data)
        spec.is_valid(raise_exception=True)
        webhook, secret = service.add_webhook(**spec.validated_data)
        # The creator sees what they gave once, here; every later read shows it masked.
        data = {**WebhookSerializer(webhook).data, **service.as_given(webhook), "secret": secret}
        response = Response(data, status=status.HTTP_201_CREATED)
        add_never_cache_headers(response)  # the secret: no cache keeps a copy (no-store)
        return response


class WebhookDetailView(APIView):
    @extend_schema(parameters=[INDEX], responses=WebhookSerializer)
    def get(self, request: Request, index: str) -> Response:
        return Response(WebhookSerializer(service.get_webhook(index)).data)

    @extend_schema(parameters=[INDEX], responses={204: None})
    def delete(self, request: Request, index: str) -> Response:
        service.delete_webhook(index)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTestView(APIView):
    @extend_schema(parameters=[INDEX], request=None, responses=TestResultSerializer)
    def post(self, request: Request, index: str) -> Response:
        """Send a signed ``{"event": "test", "data": {}}`` now; the receiver's answer or the error."""
        result = service.test_webhook(index)
        return Response(result.as_dict())


class WebhookDeliveryListView(generics.ListAPIView):
    """A webhook's deliveries, newest first."""

    serializer_class = WebhookDeliverySerializer

    @extend_schema(parameters=[INDEX])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular's schema pass
            return WebhookDelivery.objects.none()
        return service.deliveries(self.kwargs["index"])


class WebhookRedeliverView(APIView):
    @extend_schema(
        parameters=[INDEX, OpenApiParameter("delivery_id", str, OpenApiParameter.PATH)],
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    def post(self, request: Request, index: str, delivery_id: str) -> Response:
        """Send a delivery's body again (same webhook-id) as a new delivery."""
        again = service.redeliver(index, delivery_id)
        return Response(WebhookDeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)
