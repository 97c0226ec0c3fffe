"""What every export step offers and is given: the ``Step`` interface and the ``ExportRun``
the steps share, as paperless-ngx's consume plugins share one document.

``run.export_vm`` calls, for each step of its list in order: ``check`` before connecting to
vCenter (all steps), then ``run`` where ``applies``. A step hands what it made to later ones
through the ``ExportRun`` (``files``, ``descriptor``, ``manifest``) and records every file it
creates with ``run.output.track`` first, so a failed run's cleanup removes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from exports.pipeline.progress import ProgressSnapshot

if TYPE_CHECKING:
    from exports.pipeline.connect import VCenterTarget
    from exports.pipeline.convert import ConversionReport
    from exports.pipeline.download import DownloadedDisk
    from exports.pipeline.inventory import VMFacts
    from exports.pipeline.options import ExportOptions
    from exports.pipeline.output import OutputDir
    from exports.pipeline.progress import CancelToken, ProgressReporter
    from inventory.records import VMRecord


@dataclass
class ExportedFile:
    name: str
    size: int
    sha256: str


@dataclass
class ExportResult:
    vm_name: str
    vm_path: str
    output_dir: str
    package: str
    files: list[ExportedFile] = field(default_factory=list)
    total_bytes: int = 0
    manifest_path: str | None = None
    conversion: ConversionReport | None = None
    verified: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    dry_run: bool = False
    # Names in output_dir this run created and left as the export: what "files missing" checks.
    artifacts: list[str] = field(default_factory=list)
    # -preflight: the run only checked; its findings (inventory.findings.Finding.as_dict()).
    preflight: bool = False
    findings: list[dict[str, str]] = field(default_factory=list)
    # -libvirt: the domain file's absolute path (its plan is in conversion.libvirt_domain).
    libvirt_domain: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportRun:
    """One export as its steps see it: what was asked, and what earlier steps found or made."""

    options: ExportOptions
    target: VCenterTarget
    reporter: ProgressReporter
    cancel: CancelToken
    output: OutputDir
    steps: Sequence[Step] = ()
    # Set by the runner while the vCenter session is open (None after it closes).
    service_instance: Any = None
    # inventory.FindVM: the VirtualMachine, its record (read once), the facts the manifest takes
    # from it, the stem of every file name, the result.
    vm: Any = None
    record: VMRecord | None = None
    facts: VMFacts | None = None
    stem: str = ""
    result: ExportResult | None = None
    # convert.Convert.check: the hyper2kvm binary, or None for qemu-img.
    hyper2kvm: str | None = None
    # transfer.Transfer: the downloaded files, disks in lease order then the NVRAM if any.
    files: list[DownloadedDisk] = field(default_factory=list)
    # descriptor.Describe: the OVF descriptor vCenter wrote for those files.
    descriptor: str = ""
    # manifest.WriteManifest: the Artifact Manifest, None when the run writes none.
    manifest: dict[str, Any] | None = None
    # A step ended the run early with its result (a dry run): no later step runs, nothing is committed.
    stopped: bool = False

    @property
    def disks(self) -> list[DownloadedDisk]:
        """The disks: each carries its VirtualDisk; the one file without is the NVRAM (EFI, 6.7+)."""
        return [f for f in self.files if f.device is not None]

    @property
    def nvram(self) -> DownloadedDisk | None:
        return next((f for f in self.files if f.device is None), None)

    def phase(self, phase: str, percent: float = 100.0, current_file: str = "") -> None:
        self.reporter.progress(ProgressSnapshot(phase=phase, percent=percent, current_file=current_file))


class Step:
    """One job of an export. Subclasses override ``run``, and the hooks they need."""

    # Runs while the vCenter session is open; the session closes after the last such step.
    needs_vcenter: ClassVar[bool] = False

    def check(self, run: ExportRun) -> None:
        """Before connecting: refuse at once what this step could not do later (raise ExportError)."""

    def applies(self, run: ExportRun) -> bool:
        """Whether this run needs the step (options, what earlier steps found)."""
        return True

    def run(self, run: ExportRun) -> None:
        raise NotImplementedError

    def marker_names(self, stem: str) -> list[str]:
        """Files this step may leave whose presence means a completed export is there."""
        return []

    def companion_names(self, stem: str) -> list[str]:
        """Files this step may leave that describe an export: an ``-overwrite`` sets a previous
        export's aside with it, even when this run makes no such file."""
        return []
