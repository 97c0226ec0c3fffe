from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from hypersdk.lib import events
        from metrics import collector, recording
        from webhooks.signals import delivery_attempted

        # Every process that emits job events (workers, beat's reaper, the API) counts them.
        events.subscribe(recording.on_event)
        delivery_attempted.connect(recording.on_webhook_attempt, dispatch_uid="metrics-webhook-attempts")
        collector.register(REGISTRY)
