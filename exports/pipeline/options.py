"""What an export is asked to do, validated once, whoever asks (CLI, API, schedule).

Each export option is declared once, as a field of ``ExportOptions`` carrying an ``Option``:
its kind, default, bounds, choices, help and where it shows. The job spec's serializer fields
(``exports/job_spec.py``), the CLIs' flags (``cli/flags.py``), the dashboard's form fields
(``dashboard/forms.py``), the config importer and the job summary (``cli/render.py``) are built
from ``OPTIONS``. Inside, durations are seconds; only the wire may count otherwise
(``api_unit``), and the conversion is made here. Recipe: docs/architecture/options.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from exports.pipeline.formats import DEFAULT_TARGET, OVA_GZIP_LEVEL, PACKAGE_FORMATS, TARGETS
from exports.pipeline.names import file_stem
from libvirt_domain.define import check_uri
from libvirt_domain.networks import DISK_BUSES, check_network_map

__all__ = ["OPTIONS", "PACKAGE_FORMATS", "ExportOptions", "InvalidOptions", "Option", "parse_duration"]

# A job's bounds, whoever asks: the API's job spec, the CLIs' flags and a direct export.
MAX_PARALLEL = 32
MAX_CONVERSION_TIMEOUT_MINUTES = 7 * 24 * 60
# ASCII digits only: \d would take other scripts' digits, which int() reads as numbers.
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.ASCII)
# Longer than any duration within bounds; int() of thousands of digits is an error of its own.
_DURATION_MAX_CHARS = 24
KINDS = ("switch", "choice", "count", "duration", "path", "text")


class InvalidOptions(ValueError):
    """A usage error: the request itself is wrong, whatever the vCenter says. ``field``: the
    option it is about (the API reports it as that field's error), "" when none is."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


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
class FormField:
    """How the dashboard's converter form shows an option (the guide's wording)."""

    name: str
    label: str
    help: str = ""
    placeholder: str = ""


@dataclass(frozen=True)
class Option:
    """One export option, as every surface shows it.

    ``kind``: switch (bool, off by default), choice (one of ``choices``: (value, label) pairs),
    count (a whole number from ``low`` to ``high``), duration (seconds, more than zero and at
    most ``high``; typed as minutes or 2h/90m/45s; the API counts ``api_unit`` seconds), path
    (text; None/"" for none), text (as path, checked by ``parse``). ``help`` is the CLI's, formatted with default/low/high (API units
    for a duration). ``flag``: the CLI flag without dashes ("" → the name with dashes; None → no
    flag). ``stored_when_given``: the job row keeps it only when asked for, so jobs from before
    the option existed read the same as jobs that did not ask. ``shown_with``: the job summary
    shows the value only when one of these switches is on. ``config_keys``: other spellings the
    v0.1.x config import accepts. ``name`` is the ExportOptions field's: the API field too.
    ``parse``: for a text option, checks a given value (ValueError, one line, for a bad one)
    and returns it as stored. ``requires``: switches that must be on when this option is
    given (``-define`` needs ``-libvirt``, which needs ``-convert``). ``schedulable``: False
    for an option a schedule may not carry (schedules refuse it, their forms leave it out).
    """

    kind: str
    default: Any
    help: str
    low: int | None = None
    high: float | None = None
    choices: tuple[tuple[str, str], ...] = ()
    flag: str | None = ""
    metavar: str | None = None
    api_help: str = ""
    api_unit: int = 1
    max_length: int = 1024
    stored_when_given: bool = False
    form: FormField | None = None
    shown_with: tuple[str, ...] = ()
    summary_name: str = ""
    config_keys: tuple[str, ...] = ()
    parse: Callable[[str], str] | None = None
    requires: tuple[str, ...] = ()
    schedulable: bool = True
    name: str = ""

    @property
    def flag_name(self) -> str | None:
        return self.name.replace("_", "-") if self.flag == "" else self.flag

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)

    @property
    def api_default(self) -> Any:
        return self.to_api(self.default)

    @property
    def api_high(self) -> int | None:
        return None if self.high is None else int(self.high // self.api_unit)

    @property
    def api_unit_suffix(self) -> str:
        """How a summary marks the API's unit of a duration (``120m``); "" for the rest."""
        return {1: "s", 60: "m", 3600: "h"}[self.api_unit] if self.kind == "duration" else ""

    @property
    def cli_help(self) -> str:
        return self.help.format(default=self.api_default, low=self.low, high=self.api_high)

    def to_api(self, value: Any) -> Any:
        """An engine value (seconds, None) as the job spec carries it (whole API units, "")."""
        if self.kind == "duration":
            return math.ceil(value / self.api_unit)
        if self.kind in ("path", "text"):
            return value or ""
        return value

    def to_engine(self, value: Any) -> Any:
        """A job spec value as ExportOptions takes it."""
        if self.kind == "duration":
            return float(value) * self.api_unit
        if self.kind in ("path", "text"):
            return value or None
        return value

    def from_flag(self, text: str) -> Any:
        """A flag's value (already checked by its argparse type) as the engine takes it."""
        return parse_duration(text) if self.kind == "duration" else text

    def how_to_ask(self, surface: str) -> str | None:
        """How a request from ``surface`` (a job's origin: cli, api, dashboard, schedule) turns
        this switch on, in that surface's own words: ``pass -overwrite``, ``tick "Overwrite"``,
        ``set "overwrite": true`` (the API's job spec, which schedules reuse). None when the
        surface has no control for it (the dashboard's form does not show every option)."""
        assert self.kind == "switch", self.name
        if surface == "cli" and self.flag_name:
            return f"pass -{self.flag_name}"
        if surface == "dashboard":
            return f'tick "{self.form.label}"' if self.form else None
        return f'set "{self.name}": true'

    def check(self, value: Any) -> None:
        """Raise InvalidOptions (one line, in the CLI's words) for a value out of bounds."""
        if self.kind == "choice" and value not in self.values:
            *most, last = self.values
            raise InvalidOptions(
                f"unknown {self.name.replace('_', ' ')} {value!r}: use {', '.join(most)} or {last}"
            )
        if self.kind == "count" and not self.low <= value <= self.high:  # type: ignore[operator]
            raise InvalidOptions(f"-{self.flag_name} must be from {self.low} to {self.high}")
        if self.kind == "duration" and not 0 < value <= self.high:  # type: ignore[operator]
            raise InvalidOptions(
                f"-{self.flag_name} must be more than zero and at most {self.high / 60:g} minutes"  # type: ignore[operator]
            )
        if self.kind == "text" and value and self.parse is not None:
            try:
                self.parse(value)
            except ValueError as exc:
                raise InvalidOptions(str(exc), field=self.name) from None

    def given(self, value: Any) -> bool:
        """Whether ``value`` asks for something (a switch on, a text or path not empty, any
        other value other than the default)."""
        if self.kind in ("path", "text"):
            return bool(value)
        return bool(value) if self.kind == "switch" else value != self.default


def option(**declaration: Any) -> Any:
    """An ExportOptions field declared as an export option (see Option)."""
    return field(default=declaration["default"], metadata={"option": Option(**declaration)})


@dataclass(frozen=True)
class ExportOptions:
    vm_path: str
    output_dir: Path | None = None
    # The export options, in the job spec's field order (the API's, and its errors'); new ones last.
    format: str = option(
        kind="choice",
        default=PACKAGE_FORMATS[0],
        choices=tuple((name, name) for name in PACKAGE_FORMATS),
        help="ovf (a directory, the default) or ova",
    )
    compress: bool = option(
        kind="switch",
        default=False,
        help="gzip each disk inside the OVA (ovf:compression); zstd-compress qcow2 output",
        form=FormField(
            "compress", "Compress", "Compress the exported OVA: each disk gzipped inside it, as ovftool does."
        ),
    )
    manifest: bool = option(kind="switch", default=False, help="write the Artifact Manifest (manifest.json)")
    manifest_target: str = option(
        kind="choice",
        default=DEFAULT_TARGET,
        choices=tuple((target.name, target.label) for target in TARGETS),
        help="conversion target (default {default})",
        form=FormField("target_format", "Target Format"),
        shown_with=("manifest", "convert", "verify"),
        summary_name="target",
    )
    convert: bool = option(
        kind="switch",
        default=False,
        help="convert the disks after export",
        form=FormField("auto_convert", "Auto-convert", "Convert the disks after the export."),
    )
    verify: bool = option(
        kind="switch",
        default=False,
        help="verify checksums and converted disks",
        form=FormField("verify", "Verify", "Verify checksums after conversion."),
    )
    parallel: int = option(
        kind="count",
        default=4,
        low=1,
        high=MAX_PARALLEL,
        metavar="N",
        help="disks downloaded at once, {low} to {high} (default {default})",
    )
    power_off: bool = option(
        kind="switch",
        default=False,
        help="shut a running VM down first",
        form=FormField(
            "power_off",
            "Power off",
            "Shut a running VM down first (guest shutdown, then power off after the timeout).",
        ),
    )
    hyper2kvm_path: str | None = option(
        kind="path",
        default=None,
        metavar="PATH",
        help="hyper2kvm binary (default: found on PATH)",
        api_help="empty: auto-detect; else one of the server's converters (HYPERSDK_HYPER2KVM_PATHS)",
        form=FormField(
            "hyper2kvm_path",
            "Hyper2KVM Binary Path",
            "Auto-detected if empty; else one of the converters this server is configured with.",
            placeholder="/usr/local/bin/hyper2kvm",
        ),
        shown_with=("convert",),
        summary_name="hyper2kvm",
    )
    conversion_timeout: float = option(
        kind="duration",
        default=120 * 60.0,
        high=MAX_CONVERSION_TIMEOUT_MINUTES * 60,
        api_unit=60,
        metavar="DURATION",
        help="minutes, or 2h/90m (default {default}, at most {high})",
        api_help="minutes",
        form=FormField("conversion_timeout", "Conversion Timeout (minutes)"),
        shown_with=("convert",),
    )
    overwrite: bool = option(
        kind="switch",
        default=False,
        help="replace a completed export in the output directory",
        form=FormField(
            "overwrite",
            "Overwrite",
            "Replace a completed export in the output directory (it is kept until this one is whole).",
        ),
    )
    compression_level: int = option(
        kind="count",
        default=OVA_GZIP_LEVEL,
        low=1,
        high=9,
        metavar="N",
        help="with -compress: the OVA's gzip level, {low} (fastest, the default) to {high} (smallest)",
        stored_when_given=True,
        shown_with=("compress",),
    )
    preflight: bool = option(
        kind="switch",
        default=False,
        help="only check what would go wrong (VM, output directory, converter, privilege), "
        "print the findings and stop: exit 0 without a blocker, 1 with one",
        api_help="only run the preflight checks: the job ends completed with the findings in its "
        "log and result, or failed on a blocker; no lease, no file",
        stored_when_given=True,
    )
    libvirt: bool = option(
        kind="switch",
        default=False,
        help="after conversion, write <output>/<vm>.xml, a libvirt domain for the converted disks",
        api_help="after conversion, write <output>/<vm>.xml, a libvirt domain for the converted disks "
        "(needs convert)",
        stored_when_given=True,
        requires=("convert",),
        form=FormField(
            "libvirt",
            "Write libvirt domain",
            "With Auto-convert: a libvirt domain (<vm>.xml) for the converted disks: CPUs, memory, "
            "firmware, disks, NICs.",
        ),
    )
    disk_bus: str = option(
        kind="choice",
        default="auto",
        choices=tuple((bus, bus) for bus in DISK_BUSES),
        help="the domain's disk bus: auto (virtio if the guest OS has virtio drivers, else sata; "
        "the default), virtio, sata or scsi",
        stored_when_given=True,
        requires=("libvirt",),
        shown_with=("libvirt",),
        form=FormField(
            "disk_bus",
            "Disk bus",
            "auto: virtio when the guest OS has virtio drivers (osinfo-db), else sata.",
        ),
    )
    network_map: str | None = option(
        kind="text",
        default=None,
        metavar="MAP",
        help='vSphere network to libvirt network: "VM Network=default,DMZ=bridge:br-dmz" '
        "(unmapped: the default network, with a warning)",
        api_help='"VM Network=default,DMZ=bridge:br-dmz": a libvirt network, or bridge:<name>; '
        "unmapped networks get the default network and a warning",
        stored_when_given=True,
        requires=("libvirt",),
        shown_with=("libvirt",),
        parse=check_network_map,
        form=FormField(
            "network_map",
            "Network map",
            "vSphere network = libvirt network (or bridge:<name>), comma-separated; "
            "unmapped networks get the default network.",
            placeholder="VM Network=default,DMZ=bridge:br-dmz",
        ),
    )
    define_uri: str | None = option(
        kind="text",
        default=None,
        flag="define",
        metavar="URI",
        help="define the domain with libvirt at URI (e.g. qemu:///system); never starts it",
        api_help="define the domain with libvirt at this URI, one the server allows "
        "(HYPERSDK_LIBVIRT_DEFINE_URIS); never started",
        max_length=256,
        stored_when_given=True,
        requires=("libvirt",),
        shown_with=("libvirt",),
        parse=check_uri,
        # Each night's export would meet the domain the last one defined (and retention removes
        # old runs' disks under it): a domain is defined once, by hand or by a one-off job.
        schedulable=False,
        form=FormField(
            "define_uri",
            "Define with libvirt at",
            "Empty: only write the file. Else one of the libvirt URIs this server allows "
            "(HYPERSDK_LIBVIRT_DEFINE_URIS); the domain is defined, never started.",
            placeholder="qemu:///system",
        ),
    )
    # Direct exports only, or internal to the engine: not export options of a job.
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
        for declared in OPTIONS:
            declared.check(getattr(self, declared.name))
        check_requirements({declared.name: getattr(self, declared.name) for declared in OPTIONS})
        return self


# Every export option, in declaration order.
OPTIONS: tuple[Option, ...] = tuple(
    replace(each.metadata["option"], name=each.name)
    for each in fields(ExportOptions)
    if "option" in each.metadata
)
OPTION = {declared.name: declared for declared in OPTIONS}
# The job options handed to the export engine, beside vm_path/output_path/vcenter.
ENGINE_OPTIONS = tuple(OPTION)
assert all(declared.kind in KINDS for declared in OPTIONS), "an option of an unknown kind"


def check_requirements(values: Mapping[str, Any], *, surface: str = "cli") -> None:
    """Raise InvalidOptions (with ``field``) for an option given without a switch it needs
    (``Option.requires``), worded for ``surface`` (cli: ``-define needs -libvirt``; api,
    schedule: ``needs "libvirt": true``, the field's error; dashboard: ``needs "Write libvirt
    domain" ticked``). ``values``: option name to value, engine or API units alike."""
    for declared in OPTIONS:
        if not declared.given(values.get(declared.name, declared.default)):
            continue
        for name in declared.requires:
            if values.get(name):
                continue
            needed = OPTION[name]
            if surface == "cli":
                message = f"-{declared.flag_name} needs -{needed.flag_name}"
            elif surface == "dashboard" and needed.form is not None:
                message = f'needs "{needed.form.label}" ticked'
            else:
                message = f'needs "{name}": true'
            raise InvalidOptions(message, field=declared.name)


def engine_values(job_options: dict[str, Any]) -> dict[str, Any]:
    """A job's validated options (API units, maybe without the options stored only when given)
    as ExportOptions keyword arguments: seconds, None for no path, defaults filled in."""
    return {
        declared.name: declared.to_engine(job_options[declared.name])
        if declared.name in job_options
        else declared.default
        for declared in OPTIONS
    }
