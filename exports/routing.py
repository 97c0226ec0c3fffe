from django.urls import path

from exports.consumers import JobStreamConsumer

websocket_urlpatterns = [
    path("ws/jobs/", JobStreamConsumer.as_asgi()),
    path("ws/jobs/<str:job_id>/", JobStreamConsumer.as_asgi()),
]
