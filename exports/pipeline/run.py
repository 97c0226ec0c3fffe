"""The export pipeline, step by step: connect → find VM → lease → download → descriptor and
manifest → package → convert → verify. Each step is a module of its own; this one orders them
and owns the rule that a failed or cancelled run leaves nothing that looks complete.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exports.pipeline.connect import VCenterTarget, session_cookie, vsphere_session
from exports.pipeline.convert import REPORT_NAME, ConversionReport, convert_export, find_hyper2kvm
from exports.pipeline.descriptor import create_ovf_descriptor, write_descriptor_and_manifest
from exports.pipeline.download import DownloadedDisk, download_disk, probe_size
from exports.pipeline.errors import DownloadError, ExportCancelled, ExportError, LeaseError, VMPoweredOn
from exports.pipeline.files import OutputDir
from exports.pipeline.inventory import ensure_powered_off, find_vm, read_vm_facts
from exports.pipeline.lease import ExportLease
from exports.pipeline.manifest import CONVERTED_DIR, MANIFEST_NAME, build_manifest, write_manifest
from exports.pipeline.names import file_stem
from exports.pipeline.options import ExportOptions
from exports.pipeline.package import (
    check_member_names,
    gzip_disks,
    mark_gzip_references,
    write_ova,
)
from exports.pipeline.progress import (
    CancelToken,
    NullReporter,
    ProgressReporter,
    ProgressSnapshot,
    TransferMeter,
)
from exports.pipeline.verify import verify_export


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _phase(reporter: ProgressReporter, phase: str, percent: float = 100.0, current_file: str = "") -> None:
    reporter.progress(ProgressSnapshot(phase=phase, percent=percent, current_file=current_file))


def export_vm(
    options: ExportOptions,
    target: VCenterTarget,
    reporter: ProgressReporter | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Run one export end to end; raise ExportError (one-line message) on any failure."""
    reporter = reporter or NullReporter()
    cancel = cancel or CancelToken()
    options.validate()
    started = time.monotonic()
    hyper2kvm = find_hyper2kvm(options.hyper2kvm_path) if options.convert else None
    _phase(reporter, "connecting", 0.0)
    with vsphere_session(target) as service_instance:
        vm = find_vm(service_instance, options.vm_path)
        facts = read_vm_facts(vm)
        stem = file_stem(facts.name)  # the files' names: the VM's, cut to fit a file name
        if options.format == "ova":
            # A name no tar header can hold must fail now, not after an hour of downloading.
            check_member_names([f"{stem}.ovf", f"{stem}.mf", f"{stem}-disk1.vmdk"])
        output = OutputDir(options.output, options.run_id)
        if options.dry_run:
            return _plan(options, vm, facts.name, output.path, reporter)
        ensure_powered_off(
            vm,
            options.vm_path,
            power_off=options.power_off,
            reporter=reporter,
            cancel=cancel,
            shutdown_timeout=options.shutdown_timeout,
        )
        output.prepare(
            completed_marker_names=[f"{stem}.ovf", f"{stem}.ova"],
            overwrite=options.overwrite,
            # What describes a previous export: replaced with it, even when this run makes no such file.
            companion_names=[f"{stem}.mf", MANIFEST_NAME, REPORT_NAME, CONVERTED_DIR],
        )
        for warning in facts.warnings:  # what the export leaves out (drives, snapshots): said up front
            reporter.log(logging.WARNING, warning)
        if options.compress and options.format == "ovf" and not options.convert:
            reporter.log(logging.WARNING, "-compress has no effect on -format ovf without -convert")
        try:
            files = _download_disks(service_instance, vm, options, target, stem, output, reporter, cancel)
            cancel.raise_if_cancelled()
            # Disks carry their VirtualDisk; the one file without is the NVRAM (EFI VMs, 6.7+).
            disks = [f for f in files if f.device is not None]
            nvram = next((f for f in files if f.device is None), None)
            _phase(reporter, "packaging")
            descriptor = create_ovf_descriptor(service_instance, vm, files)
            result = ExportResult(
                vm_name=facts.name, vm_path=options.vm_path, output_dir=str(output.path), package=""
            )
            result.package = _package(options, output, stem, descriptor, files, reporter, cancel)
            result.files = [ExportedFile(d.path.name, d.size, d.sha256) for d in files]
            result.total_bytes = sum(d.size for d in files)
            manifest = None
            if options.writes_manifest:
                _phase(reporter, "manifest")
                manifest = build_manifest(
                    vm=facts,
                    vm_path=options.vm_path,
                    vcenter=target.netloc,
                    exported_at=datetime.now(UTC),
                    disks=disks,
                    nvram=nvram,
                    output_dir=output.path,
                    package_format=options.format,
                    package_file=Path(result.package).name,
                    compressed=options.compress,
                    target_format=options.manifest_target,
                    verify_checksums=options.verify,
                )
                output.track(MANIFEST_NAME)
                result.manifest_path = str(write_manifest(output.path, manifest, dir_fd=output.fd))
                reporter.log(logging.INFO, f"Artifact Manifest written to {result.manifest_path}")
        except BaseException:
            output.discard()
            raise
    # Conversion and verification need no vCenter session: it is closed by now. A failure or
    # cancel here undoes the run as well: nothing of it stays, a replaced export comes back.
    try:
        if manifest is not None and options.convert:
            _phase(reporter, "converting", 0.0)
            result.conversion = convert_export(
                manifest,
                output.path,
                hyper2kvm=hyper2kvm,
                timeout_seconds=options.conversion_timeout,
                compress=options.compress,
                reporter=reporter,
                cancel=cancel,
                output=output,
            )
        if manifest is not None and options.verify:
            _phase(reporter, "verifying", 0.0)
            result.verified = verify_export(
                manifest,
                result.conversion,
                timeout_seconds=options.conversion_timeout,
                reporter=reporter,
                cancel=cancel,
            )
        cancel.raise_if_cancelled()
        output.ensure_in_place()
    except BaseException:
        output.discard()
        raise
    result.artifacts = output.commit()
    result.duration_seconds = round(time.monotonic() - started, 3)
    # The last word on the job: later phases' snapshots carry no byte counts, this one must.
    reporter.progress(
        ProgressSnapshot(
            phase="completed", percent=100.0, bytes_done=result.total_bytes, bytes_total=result.total_bytes
        )
    )
    return result


def _plan(
    options: ExportOptions, vm, name: str, output_dir: Path, reporter: ProgressReporter
) -> ExportResult:
    """-dry-run: say what would happen, touch nothing."""
    from pyVmomi import vim

    if vm.runtime.powerState != vim.VirtualMachinePowerState.poweredOff and not options.power_off:
        raise VMPoweredOn(
            f"VM {options.vm_path} is powered on: shut it down first, or pass -power-off to stop it"
        )
    disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    capacity = sum(d.capacityInBytes or d.capacityInKB * 1024 for d in disks)
    reporter.log(
        logging.INFO,
        f"dry run: would export {options.vm_path} ({len(disks)} disk(s), {capacity} bytes of capacity) "
        f"as {options.format.upper()} to {output_dir}",
    )
    package = output_dir / f"{file_stem(name)}.{options.format}"
    return ExportResult(
        vm_name=name, vm_path=options.vm_path, output_dir=str(output_dir), package=str(package), dry_run=True
    )


def _download_disks(
    service_instance,
    vm,
    options: ExportOptions,
    target: VCenterTarget,
    name: str,
    output: OutputDir,
    reporter: ProgressReporter,
    cancel: CancelToken,
) -> list[DownloadedDisk]:
    """Download every disk; a failed disk is retried under a new lease (vSphere cannot resume)."""
    meter = TransferMeter(reporter)
    cookie = session_cookie(service_instance)
    done: dict[int, DownloadedDisk] = {}
    last_error: ExportError | None = None
    for attempt in range(1, options.max_attempts + 1):
        if attempt > 1:
            delay = options.retry_backoff * 2 ** (attempt - 2)
            reporter.log(
                logging.WARNING,
                f"retrying under a new lease in {delay:.0f}s (attempt {attempt}): {last_error}",
            )
            if cancel.wait(delay):
                raise ExportCancelled()
        _phase(reporter, "waiting for export lease", meter.percent())
        try:
            lease = ExportLease.open(vm, options.vm_path, reporter, cancel)
        except LeaseError as exc:
            if not exc.retryable:
                raise
            last_error = exc  # vCenter went away: counts as an attempt, so retries stay bounded
            continue
        try:
            disk_count, failures = _download_under_lease(
                lease, done, options, target, name, output, meter, cookie, cancel
            )
        except BaseException:
            lease.abort()
            raise
        if not failures:
            lease.complete()
            return [done[i] for i in range(disk_count)]
        lease.abort()
        last_error = failures[0]
        if lease.keepalive_error:
            last_error = DownloadError(f"export lease lost: {lease.keepalive_error}")
    raise DownloadError(f"export failed after {options.max_attempts} attempts: {last_error}")


def _download_under_lease(
    lease: ExportLease,
    done: dict[int, DownloadedDisk],
    options: ExportOptions,
    target: VCenterTarget,
    name: str,
    output: OutputDir,
    meter: TransferMeter,
    cookie: str,
    cancel: CancelToken,
) -> tuple[int, list[DownloadError]]:
    """Fetch the files (disks, then the NVRAM if offered) not yet in ``done`` in parallel.

    Returns the number of files and the retryable failures.
    """
    sources = lease.disks(target.netloc)
    dests = [output.track(f"{name}-disk{i + 1}.vmdk") for i in range(len(sources))]
    nvram = lease.nvram(target.netloc)
    if nvram is not None:
        sources.append(nvram)
        dests.append(output.track(f"{name}.nvram"))
    todo = [i for i in range(len(sources)) if i not in done]
    for i in todo:
        meter.expect(dests[i].name, probe_size(sources[i], target, cookie) or sources[i].capacity_bytes)
    lease.start_keepalive(meter.percent)
    # One failure that a new lease cannot fix stops the sibling downloads at once.
    attempt_cancel = CancelToken()
    unlink = cancel.on_cancel(attempt_cancel.cancel)

    def fetch(i: int) -> DownloadedDisk:
        try:
            return download_disk(
                sources[i],
                dests[i],
                target=target,
                cookie=cookie,
                meter=meter,
                cancel=attempt_cancel,
                dir_fd=output.fd,
            )
        except DownloadError as exc:
            if not exc.retryable:
                attempt_cancel.cancel()
            raise

    failures: list[DownloadError] = []
    try:
        with ThreadPoolExecutor(max_workers=options.parallel, thread_name_prefix="disk") as pool:
            futures = {i: pool.submit(fetch, i) for i in todo}
            for i, future in futures.items():
                try:
                    done[i] = future.result()
                except ExportCancelled:
                    pass  # a sibling's fatal error or the user's cancel: both surface below
                except DownloadError as exc:
                    failures.append(exc)
    finally:
        unlink()
    cancel.raise_if_cancelled()
    fatal = [failure for failure in failures if not failure.retryable]
    if fatal:
        raise fatal[0]
    return len(sources), failures


def _package(
    options: ExportOptions,
    output: OutputDir,
    name: str,
    descriptor: str,
    disks: list[DownloadedDisk],
    reporter: ProgressReporter,
    cancel: CancelToken,
) -> str:
    if options.format == "ovf":
        output.track(f"{name}.mf")
        output.track(f"{name}.ovf")
        ovf_path, _ = write_descriptor_and_manifest(output.path, name, descriptor, disks, dir_fd=output.fd)
        return str(ovf_path)
    # OVA: the .ovf/.mf are staged in the run's own directory (a loose .ovf would mark the
    # export complete); the disks stay beside the OVA when the Artifact Manifest points at
    # them (hyper2kvm and verify read them), else they go.
    members = [d.path.name for d in disks]
    gzipped: list[DownloadedDisk] = []
    if options.compress:
        # Per-file compression (ovf:compression="gzip"): the OVA stays a plain tar; the disks
        # beside it stay as downloaded, for the Artifact Manifest and conversion.
        reporter.log(logging.INFO, f"gzipping {len(disks)} file(s) for {name}.ova")
        gzipped = gzip_disks(
            disks,
            output.run_path,
            cancel,
            dir_fd=output.fd,
            staging_fd=output.run_fd,
            level=options.compression_level,
        )
        descriptor = mark_gzip_references(descriptor, {g.path.name: g.size for g in gzipped})
        members = [f"{output.run_dir_name}/{g.path.name}" for g in gzipped]
    write_descriptor_and_manifest(output.run_path, name, descriptor, gzipped or disks, dir_fd=output.run_fd)
    reporter.log(logging.INFO, f"packing {name}.ova")
    ova = output.track(f"{name}.ova")
    staged = [f"{output.run_dir_name}/{name}.ovf", f"{output.run_dir_name}/{name}.mf"]
    write_ova(ova, [Path(p) for p in [*staged, *members]], cancel, dir_fd=output.fd)
    for packed in gzipped:  # in the OVA now: their space is wanted for conversion
        os.unlink(packed.path.name, dir_fd=output.run_fd)
    if not options.writes_manifest:
        for disk in disks:
            os.unlink(disk.path.name, dir_fd=output.fd)
    return str(ova)
