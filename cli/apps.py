from django.apps import AppConfig


class CliConfig(AppConfig):
    """The operator's commands (hyperexport, hyperctl, hypervisord), above the domain apps."""

    name = "cli"
    verbose_name = "Command line"
