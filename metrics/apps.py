from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from hypersdk import events
        from metrics import collector, recording

        # Every process that emits job events (workers, beat's reaper, the API) counts them.
        events.subscribe(recording.on_event)
        collector.register(REGISTRY)
