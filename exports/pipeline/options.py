"""What an export is asked to do, validated once, whoever asks (CLI, API, schedule)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from exports.pipeline.convert import TARGET_FORMATS
from exports.pipeline.names import file_stem

PACKAGE_FORMATS = ("ovf", "ova")
# A job's bounds, whoever asks: the API's job spec, the CLIs' flags and a direct export.
MAX_PARALLEL = 32
MAX_CONVERSION_TIMEOUT_MINUTES = 7 * 24 * 60
# ASCII digits only: \d would take other scripts' digits, which int() reads as numbers.
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.ASCII)
# Longer than any duration within bounds; int() of thousands of digits is an error of its own.
_DURATION_MAX_CHARS = 24


class InvalidOptions(ValueError):
    """A usage error: the request itself is wrong, whatever the vCenter says."""


def parse_duration(text: str, *, maximum: float | None = None) -> float:
    """Seconds from ``90`` (minutes, as the guide counts them), ``90m``, ``2h``, ``1h30m`` or ``45s``.

    ASCII digits only; more than zero and, given ``maximum`` (seconds), at most that.
    Raises InvalidOptions naming what is accepted.
    """
    value = text.strip().lower()
    shown = repr(text) if len(text) <= _DURATION_MAX_CHARS else repr(text[:_DURATION_MAX_CHARS] + "...")
    match = _DURATION.fullmatch(value) if len(value) <= _DURATION_MAX_CHARS else None
    if value.isascii() and value.isdigit() and len(value) <= _DURATION_MAX_CHARS:
        seconds = int(value) * 60
    elif value and match:
        hours, minutes, secs = (int(group or 0) for group in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise InvalidOptions(f"invalid duration {shown}: use minutes (120) or 2h, 90m, 45s")
    if seconds <= 0:
        raise InvalidOptions(f"invalid duration {shown}: must be more than zero")
    if maximum is not None and seconds > maximum:
        raise InvalidOptions(f"invalid duration {shown}: at most {maximum / 60:g} minutes")
    return float(seconds)


@dataclass(frozen=True)
class ExportOptions:
    vm_path: str
    output_dir: Path | None = None
    format: str = "ovf"
    compress: bool = False
    parallel: int = 4
    power_off: bool = False
    manifest: bool = False
    manifest_target: str = "qcow2"
    convert: bool = False
    verify: bool = False
    hyper2kvm_path: str | None = None
    conversion_timeout: float = 120 * 60.0
    overwrite: bool = False
    dry_run: bool = False
    max_attempts: int = 3
    retry_backoff: float = 2.0
    shutdown_timeout: float = 300.0
    # Names the run's record in the output directory (the job id under the daemon).
    run_id: str | None = None

    @property
    def vm_name(self) -> str:
        return self.vm_path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def output(self) -> Path:
        default = Path(f"export-{file_stem(self.vm_name)}")  # fits a file name, any VM name
        return (self.output_dir or default).expanduser().absolute()

    @property
    def writes_manifest(self) -> bool:
        """Conversion and verification read the manifest, so they imply it."""
        return self.manifest or self.convert or self.verify

    def validate(self) -> ExportOptions:
        if not self.vm_path.strip().strip("/"):
            raise InvalidOptions("give the VM's inventory path with -vm, e.g. -vm /dc/vm/prod/web01")
        if self.format not in PACKAGE_FORMATS:
            raise InvalidOptions(f"unknown format {self.format!r}: use ovf or ova")
        if self.manifest_target not in TARGET_FORMATS:
            raise InvalidOptions(f"unknown manifest target {self.manifest_target!r}: use qcow2, raw or vdi")
        if not 1 <= self.parallel <= MAX_PARALLEL:
            raise InvalidOptions(f"-parallel must be from 1 to {MAX_PARALLEL}")
        if not 0 < self.conversion_timeout <= MAX_CONVERSION_TIMEOUT_MINUTES * 60:
            raise InvalidOptions(
                f"-conversion-timeout must be more than zero and at most {MAX_CONVERSION_TIMEOUT_MINUTES} minutes"
            )
        return self
