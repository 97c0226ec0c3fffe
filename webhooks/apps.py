from django.apps import AppConfig
from django.core import checks


def _fan_out(event: str, data: dict) -> None:
    """The webhooks' event subscriber; the delivery machinery (HTTP client, Celery) is imported
    at the first event, not by every process that loads the apps (a CLI listing schedules)."""
    from webhooks import fanout

    fanout.on_event(event, data)


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from hypersdk.lib import events
        from webhooks import conf

        events.subscribe(_fan_out)

        @checks.register(checks.Tags.compatibility)
        def webhook_settings(app_configs, **kwargs):
            return [checks.Error(problem, id="webhooks.E001") for problem in conf.check()]
