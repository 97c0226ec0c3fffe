"""The Celery app; workers run exports (tasks arrive with the daemon)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
app = Celery("hypersdk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
