from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhooks", views.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<str:index>", views.WebhookDetailView.as_view(), name="webhooks-detail"),
    path("webhooks/<str:index>/test", views.WebhookTestView.as_view(), name="webhooks-test"),
    path(
        "webhooks/<str:index>/deliveries", views.WebhookDeliveryListView.as_view(), name="webhooks-deliveries"
    ),
    path(
        "webhooks/<str:index>/deliveries/<str:delivery_id>/redeliver",
        views.WebhookRedeliverView.as_view(),
        name="webhooks-redeliver",
    ),
]
