"""The Celery app; workers run exports (tasks arrive with the daemon)."""

import os

from celery import Celery, signals
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")


def every_minute_as_crontab(schedule: dict) -> dict:
    """The beat schedule with each ``"crontab()"`` (settings spell it so, to import no Celery)
    made Celery's every-minute crontab."""
    return {
        name: {**entry, "schedule": crontab()} if entry.get("schedule") == "crontab()" else entry
        for name, entry in schedule.items()
    }


app = Celery("hypersdk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = every_minute_as_crontab(app.conf.beat_schedule)
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(loglevel=None, **kwargs) -> None:
    """Workers and beat log through settings.LOGGING (job ids, JSON) at the level of ``-l``,
    instead of Celery adding a second handler of its own to the root logger."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)
