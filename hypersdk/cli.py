"""Console scripts: ``hyperexport`` and ``hyperctl`` run the management commands of the same name."""

from __future__ import annotations

import os
import sys


def _run(command: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line([command, command, *sys.argv[1:]])


def hyperexport() -> None:
    """A direct export needs neither the ORM nor the app registry, so skip ``django.setup()``.

    Loading every app (admin, DRF, Celery beat) costs about a second before the first byte
    moves; the command only needs settings, which load lazily.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
    from exports.management.commands.hyperexport import Command

    Command().run_from_argv(["hyperexport", "hyperexport", *sys.argv[1:]])


def hyperctl() -> None:
    _run("hyperctl")
