from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    # No Celery import here: the modules that send tasks (exports.job_queue, webhooks.dispatch)
    # import our app themselves, workers and beat load it with -A, and a CLI process that
    # never sends one does not pay for Celery.
