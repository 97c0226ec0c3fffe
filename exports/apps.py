from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    def ready(self) -> None:
        # Bind shared tasks to our Celery app (broker from settings) in every process that
        # loads the apps: daphne's API sends jobs to the workers through it.
        import hypersdk.celery  # noqa: F401
