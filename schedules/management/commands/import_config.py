"""``manage.py import_config config.yaml``: bring schedules and webhooks over from v0.1.x."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from schedules.config_import import ConfigError, import_config


class Command(BaseCommand):
    help = "Import schedules: and webhooks: from a HyperSDK v0.1.x YAML config (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("config", type=Path, help="the old config.yaml")

    def handle(self, *args, **options) -> None:
        try:
            report = import_config(options["config"])
        except ConfigError as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(1)
        for line in report.created:
            self.stdout.write(f"created {line}")
        for line in report.skipped:
            self.stdout.write(f"skipped {line}")
        for line in report.failed:
            self.stderr.write(f"error: {line}")
        self.stdout.write(
            f"{len(report.created)} created, {len(report.skipped)} skipped, {len(report.failed)} not imported"
        )
        if not report.ok:
            sys.exit(1)
