"""``manage.py purge_jobs --older-than DAYS [--delete-files] [--dry-run]``: a thin adapter over
exports.retention (the daily clean-up of HYPERSDK_JOB_RETENTION_DAYS runs the same code)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from cli.flags import whole_number
from exports import retention

# A century: an older cut-off is before any job, and a datetime cannot go back much further.
MAX_DAYS = 36_500


class Command(BaseCommand):
    help = "Delete finished jobs (and their logs) older than DAYS; export files stay unless --delete-files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", type=whole_number("days", 0, MAX_DAYS), required=True, metavar="DAYS"
        )
        parser.add_argument(
            "--delete-files",
            action="store_true",
            help="also remove the output directories those jobs created (inside the export roots)",
        )
        parser.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")

    def handle(self, *args, older_than: int, delete_files: bool, dry_run: bool, **options) -> None:
        result = retention.purge_jobs(older_than, delete_files=delete_files, dry_run=dry_run)
        for path in result.removed_outputs:
            self.stdout.write(f"{'would remove' if dry_run else 'removed'} {path}")
        self.stdout.write(result.summary(older_than))
