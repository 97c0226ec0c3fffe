"""What hypervisord and bootstrap_admin check before they start: a data dir and secrets of their
own user's, private, and converters nobody else can replace (they would run as this user)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from exports import converters
from hypersdk.lib import private_files


def run_start_checks(command: BaseCommand) -> None:
    """Tighten what may be tightened (said on stdout), warn on stderr, and raise CommandError
    (one line, the fix in it) for what must stop the start."""
    try:
        checked = private_files.secure_configured_data_dir()
        converters.check_converters_at_start()
    except (private_files.InsecurePermissions, converters.ConverterUnsafe) as exc:
        raise CommandError(str(exc)) from None
    for line in checked.tightened:
        command.stdout.write(line)
    for line in checked.warnings:
        command.stderr.write(f"warning: {line}")
