"""Package the export: ``-format ovf`` writes ``<stem>.mf`` then ``<stem>.ovf`` beside the disks;
``-format ova`` packs the descriptor, the ``.mf`` and the files into ``<stem>.ova`` (the OVA's
own format: ``ova.py``).

An OVA's ``.ovf``/``.mf`` (and gzipped disks under ``-compress``) are staged in the run's own
directory, never loose in the output: a loose ``.ovf`` would mark the export complete.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from exports.pipeline.descriptor import write_descriptor_and_manifest
from exports.pipeline.download import DownloadedDisk
from exports.pipeline.names import disk_file_name
from exports.pipeline.options import ExportOptions
from exports.pipeline.output import OutputDir
from exports.pipeline.ova import check_member_names, gzip_disks, mark_gzip_references, write_ova
from exports.pipeline.progress import PACKAGING, CancelToken, PhaseMeter, ProgressReporter
from exports.pipeline.step import ExportRun, Step
from hypersdk.lib.units import human_duration, human_size


class CheckPackageNames(Step):
    """A name no tar header can hold must fail now, not after an hour of downloading."""

    def applies(self, run: ExportRun) -> bool:
        return run.options.format == "ova"

    def run(self, run: ExportRun) -> None:
        stem = run.stem
        check_member_names([f"{stem}.ovf", f"{stem}.mf", disk_file_name(stem, 1)])


class Package(Step):
    def run(self, run: ExportRun) -> None:
        run.phase(PACKAGING, 0.0)
        run.result.package = package_files(
            run.options, run.output, run.stem, run.descriptor, run.files, run.reporter, run.cancel
        )

    def marker_names(self, stem: str) -> list[str]:
        return [f"{stem}.ovf", f"{stem}.ova"]

    def companion_names(self, stem: str) -> list[str]:
        return [f"{stem}.mf"]


def package_files(
    options: ExportOptions,
    output: OutputDir,
    name: str,
    descriptor: str,
    disks: list[DownloadedDisk],
    reporter: ProgressReporter,
    cancel: CancelToken,
) -> str:
    """Write the package of ``disks`` (every downloaded file) as ``-format`` asks; return its path.

    Reports the ``packaging`` phase: bytes gzipped (``-compress``), then bytes packed into the OVA.
    """
    if options.format == "ovf":
        output.track(f"{name}.mf")
        output.track(f"{name}.ovf")
        ovf_path, _ = write_descriptor_and_manifest(output.path, name, descriptor, disks, dir_fd=output.fd)
        reporter.log(logging.INFO, f"packaging: wrote {name}.mf and {name}.ovf")
        return str(ovf_path)
    meter = PhaseMeter(reporter, PACKAGING)
    started = time.monotonic()  # the gzip pass included: the log's time is the phase's
    # Both passes counted from the start, the OVA's at the disks' size until the gzips are known,
    # so the phase's total only shrinks and its percentage never falls.
    total = sum(d.size for d in disks)
    if options.compress:
        for disk in disks:
            meter.expect(disk.path.name, disk.size)
    meter.expect(f"{name}.ova", total)
    # OVA: the .ovf/.mf are staged in the run's own directory (a loose .ovf would mark the
    # export complete); the disks stay beside the OVA when the Artifact Manifest points at
    # them (hyper2kvm and verify read them), else they go.
    members = [d.path.name for d in disks]
    gzipped: list[DownloadedDisk] = []
    if options.compress:
        # Per-file compression (ovf:compression="gzip"): the OVA stays a plain tar; the disks
        # beside it stay as downloaded, for the Artifact Manifest and conversion.
        reporter.log(
            logging.INFO, f"packaging: gzipping {len(disks)} file(s), {human_size(total)}, for {name}.ova"
        )
        gzipped = gzip_disks(
            disks,
            output.run_path,
            cancel,
            dir_fd=output.fd,
            staging_fd=output.run_fd,
            level=options.compression_level,
            meter=meter,
        )
        descriptor = mark_gzip_references(descriptor, {g.path.name: g.size for g in gzipped})
        members = [f"{output.run_dir_name}/{g.path.name}" for g in gzipped]
    write_descriptor_and_manifest(output.run_path, name, descriptor, gzipped or disks, dir_fd=output.run_fd)
    packed_bytes = sum(g.size for g in gzipped) if gzipped else total
    reporter.log(logging.INFO, f"packaging: packing {human_size(packed_bytes)} into {name}.ova")
    ova = output.track(f"{name}.ova")
    staged = [f"{output.run_dir_name}/{name}.ovf", f"{output.run_dir_name}/{name}.mf"]
    write_ova(ova, [Path(p) for p in [*staged, *members]], cancel, dir_fd=output.fd, meter=meter)
    meter.finish(f"{name}.ova")
    elapsed = time.monotonic() - started
    reporter.log(
        logging.INFO,
        f"packaging: {name}.ova written, {human_size(os.stat(ova.name, dir_fd=output.fd).st_size)}"
        f" in {human_duration(elapsed)}" + (" with gzip" if gzipped else ""),
    )
    for packed in gzipped:  # in the OVA now: their space is wanted for conversion
        os.unlink(packed.path.name, dir_fd=output.run_fd)
    if not options.writes_manifest:
        for disk in disks:
            os.unlink(disk.path.name, dir_fd=output.fd)
    return str(ova)
