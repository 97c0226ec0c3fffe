"""Console scripts: ``hyperexport`` and ``hyperctl`` run the management commands of the same name."""

from __future__ import annotations

import os
import sys


def _run(command: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line([command, command, *sys.argv[1:]])


def hyperexport() -> None:
    _run("hyperexport")


def hyperctl() -> None:
    _run("hyperctl")
