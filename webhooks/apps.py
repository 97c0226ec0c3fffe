from django.apps import AppConfig
from django.core import checks


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from hypersdk.lib import events
        from webhooks import conf, fanout

        events.subscribe(fanout.on_event)

        @checks.register(checks.Tags.compatibility)
        def webhook_settings(app_configs, **kwargs):
            return [checks.Error(problem, id="webhooks.E001") for problem in conf.check()]
