"""Convert the exported disks for KVM: with hyper2kvm when available, else with qemu-img.

Outputs land in ``<output>/converted/<disk id>.<format>`` either way, and a conversion report
(``conversion-report.json``: outputs, sizes, durations, checksums) is written beside the manifest.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from exports.pipeline.errors import ConversionError, ConverterMissing
from exports.pipeline.files import fd_path, sha256_sparse_file, unlink_if_present, write_atomically
from exports.pipeline.formats import target_format
from exports.pipeline.manifest import CONVERTED_DIR, MANIFEST_NAME
from exports.pipeline.output import OutputDir
from exports.pipeline.processes import ProcessTimeout, ToolOutput, command_line, qemu_img_fraction, run_tool
from exports.pipeline.progress import CONVERTING, CancelToken, PhaseMeter, ProgressReporter
from exports.pipeline.step import ExportRun, Step
from hypersdk.lib.units import human_duration, human_size

# The run's private copy of the manifest that hyper2kvm reads (see _confined_manifest).
CONVERTER_MANIFEST = "hyper2kvm-manifest.json"
REPORT_NAME = "conversion-report.json"
# hyper2kvm 0.2.1 prints "Progress: N%" only when N is a multiple of 10.
HYPER2KVM_STEP = 0.1


@dataclass
class ConvertedDisk:
    disk_id: str
    source: str
    output: str
    format: str
    size: int
    sha256: str
    duration_seconds: float


@dataclass
class ConversionReport:
    converter: str
    target_format: str
    duration_seconds: float = 0.0
    outputs: list[ConvertedDisk] = field(default_factory=list)
    converter_report: str | None = None
    # -libvirt: {"path": ..., "validated_by": ..., "defined": uri or None, **DomainPlan.as_dict()}
    libvirt_domain: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_hyper2kvm(explicit: str | None) -> str | None:
    """The configured hyper2kvm binary, else one on PATH; None means use qemu-img."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ConverterMissing(f"hyper2kvm not found or not executable: {explicit}")
        return explicit
    return shutil.which("hyper2kvm")


def convert_export(
    manifest: dict[str, Any],
    output_dir: Path,
    *,
    hyper2kvm: str | None,
    timeout_seconds: float,
    compress: bool,
    reporter: ProgressReporter,
    cancel: CancelToken,
    output: OutputDir | None = None,
) -> ConversionReport:
    """Convert every disk of ``manifest``. With ``output`` (the run's opened output directory)
    the ``converted`` directory and the report are made through its descriptor and recorded
    as this run's; qemu-img writes through ``/proc/<pid>/fd`` paths of those descriptors.

    Reports the ``converting`` phase, in which each disk counts twice its size: once converted
    (from ``qemu-img convert -p``; with hyper2kvm, its ``Progress: N%`` lines, which come in 10 %
    steps, and between them the growth of its output file), then once more while its output is
    hashed (a raw output of a big thin disk takes a while even with its holes skipped).
    """
    target = manifest["output"]["format"]
    extension = target_format(target).extension
    meter = PhaseMeter(reporter, CONVERTING)
    for disk in manifest["disks"]:
        meter.expect(disk["path"], int(disk["size"]))
        meter.expect(f"{disk['id']}.{extension}", int(disk["size"]))
    converted_dir = Path(manifest["output"]["directory"])
    if output is not None:
        converted_fd = output.make_dir(converted_dir.name)
        output.track(REPORT_NAME)
    else:
        converted_dir.mkdir(parents=True, exist_ok=True)
        converted_fd = os.open(converted_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        started = time.monotonic()
        if hyper2kvm:
            manifest_path = str(output_dir / MANIFEST_NAME)
            if output is not None:
                manifest_path = _confined_manifest(manifest, output, converted_fd)
            report = _with_hyper2kvm(
                hyper2kvm,
                manifest,
                manifest_path,
                converted_dir,
                converted_fd,
                target,
                timeout_seconds,
                meter,
                cancel,
            )
        else:
            report = _with_qemu_img(
                manifest, converted_dir, converted_fd, target, timeout_seconds, compress, meter, cancel
            )
        for disk in manifest["disks"]:
            name = f"{disk['id']}.{extension}"
            try:
                os.stat(name, dir_fd=converted_fd, follow_symlinks=False)
            except FileNotFoundError:
                raise ConversionError(f"conversion produced no {name}") from None
            previous = next((o for o in report.outputs if o.disk_id == disk["id"]), None)
            if previous is None:
                report.outputs.append(
                    ConvertedDisk(
                        disk["id"], disk["local_path"], str(converted_dir / name), target, 0, "", 0.0
                    )
                )
        for converted in report.outputs:
            name = Path(converted.output).name
            converted.size = os.stat(name, dir_fd=converted_fd, follow_symlinks=False).st_size
            converted.sha256 = sha256_sparse_file(
                Path(name), dir_fd=converted_fd, progress=_HashProgress(meter, name, converted.size)
            )
            meter.finish(name)
            reporter.log(
                logging.INFO,
                f"converting: {name} written, {human_size(converted.size)}"
                f" in {human_duration(converted.duration_seconds)}, sha256 {converted.sha256}",
            )
        report.duration_seconds = round(time.monotonic() - started, 3)
        write_atomically(
            output_dir / REPORT_NAME,
            (json.dumps(report.as_dict(), indent=2) + "\n").encode(),
            dir_fd=output.fd if output is not None else None,
        )
    finally:
        os.close(converted_fd)
    return report


def _confined_manifest(manifest: dict[str, Any], output: OutputDir, converted_fd: int) -> str:
    """A copy of the manifest for hyper2kvm, in the run's directory, whose paths go through the
    descriptors of the directories opened at the start (``/proc/<pid>/fd/<n>``): the converter
    writes by path, and a path swapped for a symlink must not lead it elsewhere. Returns the
    copy's path."""
    document = copy.deepcopy(manifest)
    for disk in document["disks"]:
        disk["local_path"] = output.proc_path(disk["path"])
    document["output"]["directory"] = fd_path(converted_fd)
    data = (json.dumps(document, indent=2) + "\n").encode()
    write_atomically(output.run_path / CONVERTER_MANIFEST, data, dir_fd=output.run_fd)
    return fd_path(output.run_fd, CONVERTER_MANIFEST)


class _HashProgress:
    """An output's bytes hashed, scaled to the share of the phase its disk was expected to take."""

    def __init__(self, meter: PhaseMeter, name: str, size: int) -> None:
        self._meter, self._name, self._size = meter, name, size
        self._expected = meter.expected(name)
        self._hashed = 0

    def __call__(self, nbytes: int) -> None:
        self._hashed += nbytes
        if self._size:
            self._meter.set(self._name, self._expected * self._hashed // self._size)


class _Hyper2kvmProgress:
    """Reads hyper2kvm's output: ``Converting disk: <id>`` starts a disk, ``Progress: N%`` moves
    it, ``Converted: <size>`` ends it (its duration). Those progress lines become progress;
    the rest go to the log, bounded. Between two of its 10 % lines, ``tick`` moves the disk on by
    what its output file has allocated, never past the next step: the bar keeps moving without
    claiming more than hyper2kvm will."""

    _START = re.compile(r"Converting disk:\s*(\S+)")
    _PROGRESS = re.compile(r"Progress:\s*(\d+(?:\.\d+)?)%")
    _END = re.compile(r"Converted:\s")

    def __init__(
        self, manifest: dict[str, Any], meter: PhaseMeter, output: ToolOutput, converted_fd: int
    ) -> None:
        self._disks = {disk["id"]: disk for disk in manifest["disks"]}
        self._meter = meter
        self._output = output
        self._converted_fd = converted_fd
        self._current: str | None = None
        self._started = 0.0
        self._step_done = 0.0  # the fraction of the current disk hyper2kvm last printed
        self.durations: dict[str, float] = {}

    def tick(self) -> None:
        disk = self._disks.get(self._current or "")
        if disk is None:
            return
        try:
            with os.scandir(self._converted_fd) as entries:
                allocated = max(
                    (
                        entry.stat(follow_symlinks=False).st_blocks * 512
                        for entry in entries
                        if entry.name.startswith(f"{disk['id']}.") and entry.is_file(follow_symlinks=False)
                    ),
                    default=0,
                )
        except OSError:
            return
        size = int(disk["size"])
        ceiling = int(min(self._step_done + HYPER2KVM_STEP, 1.0) * size) - 1
        self._meter.set(disk["path"], max(0, min(allocated, ceiling)))

    def line(self, line: str) -> None:
        disk = self._disks.get(self._current or "")
        if (progress := self._PROGRESS.search(line)) and disk is not None:
            self._step_done = min(float(progress.group(1)), 100.0) / 100.0
            self._meter.set(disk["path"], int(self._step_done * int(disk["size"])))
            return
        self._output.line(line)
        if (start := self._START.search(line)) and start.group(1) in self._disks:
            self._current, self._started, self._step_done = start.group(1), time.monotonic(), 0.0
        elif self._END.search(line) and disk is not None:
            self.durations[disk["id"]] = round(time.monotonic() - self._started, 3)
            self._meter.finish(disk["path"])


def _with_hyper2kvm(
    binary: str,
    manifest: dict[str, Any],
    manifest_path: str,
    converted_dir: Path,
    converted_fd: int,
    target: str,
    timeout_seconds: float,
    meter: PhaseMeter,
    cancel: CancelToken,
) -> ConversionReport:
    reporter = meter.reporter
    command = [binary, "--manifest", manifest_path]
    reporter.log(
        logging.INFO, f"converting: {len(manifest['disks'])} disk(s) with hyper2kvm: {command_line(command)}"
    )
    output = ToolOutput(reporter, "hyper2kvm")
    progress = _Hyper2kvmProgress(manifest, meter, output, converted_fd)
    try:
        result = run_tool(
            command, timeout=timeout_seconds, cancel=cancel, on_line=progress.line, on_tick=progress.tick
        )
    except ProcessTimeout:
        raise ConversionError(
            f"conversion timed out after {timeout_seconds / 60:.0f} min: raise -conversion-timeout"
        ) from None
    except FileNotFoundError:
        raise ConversionError(f"hyper2kvm not found: {binary}") from None
    finally:
        output.close()
    if result.returncode != 0:
        last = next((line for line in reversed(result.output.splitlines()) if line.strip()), "")
        raise ConversionError(f"hyper2kvm failed (exit {result.returncode}): {last.strip()[:300]}")
    report = ConversionReport(converter="hyper2kvm", target_format=target)
    outputs = _hyper2kvm_outputs(converted_fd)
    sources = {disk["id"]: disk["local_path"] for disk in manifest["disks"]}
    if outputs is not None:
        report.converter_report = str(converted_dir / "report.json")
        for disk in outputs:
            # Its paths may be the /proc/<pid>/fd ones it was given: name the file where it lives.
            path = str(converted_dir / Path(str(disk["output_path"])).name)
            disk_id = str(disk["disk_id"])
            # Without hyper2kvm's own marks, a lone disk took the whole run.
            whole_run = round(result.duration_seconds, 3) if len(outputs) == 1 else 0.0
            duration = progress.durations.get(disk_id, whole_run)
            report.outputs.append(
                ConvertedDisk(disk_id, sources.get(disk_id, ""), path, target, 0, "", duration)
            )
    return report


def _hyper2kvm_outputs(converted_fd: int) -> list[dict[str, Any]] | None:
    """The converted disks hyper2kvm's ``report.json`` lists; None without a report."""
    try:
        fd = os.open("report.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=converted_fd)
    except OSError:
        return None
    try:
        with os.fdopen(fd) as handle:
            stages = json.load(handle)["pipeline"]["stages"]
        return list(stages["convert"]["result"]["converted_disks"])
    except (KeyError, TypeError, ValueError, OSError):
        return []


def _with_qemu_img(
    manifest: dict[str, Any],
    converted_dir: Path,
    converted_fd: int,
    target: str,
    timeout_seconds: float,
    compress: bool,
    meter: PhaseMeter,
    cancel: CancelToken,
) -> ConversionReport:
    reporter = meter.reporter
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise ConversionError("no converter: install hyper2kvm or qemu-img (Debian package qemu-utils)")
    report = ConversionReport(converter="qemu-img", target_format=target)
    form = target_format(target)
    deadline = time.monotonic() + timeout_seconds
    for disk in manifest["disks"]:
        output = converted_dir / f"{disk['id']}.{form.extension}"
        part = output.name + ".part"
        # -m: parallel coroutines. No -W: out-of-order writes are for preallocated block devices
        # (qemu-img(1)); into a qcow2 file they cost about a quarter more time here. zstd is the
        # fast qcow2 compression.
        command = [qemu_img, "convert", "-p", "-m", "8", "-f", "vmdk", "-O", form.qemu_format]
        if compress and form.qemu_format == "qcow2":
            command += ["-c", "-o", "compression_type=zstd"]
        # The target through the converted directory's descriptor: a swapped path cannot move it.
        command += [disk["local_path"], fd_path(converted_fd, part)]
        reporter.log(
            logging.INFO,
            f"converting: {disk['path']} ({human_size(int(disk['size']))}) to {target}: {command_line(command)}",
        )
        lines = ToolOutput(reporter, "qemu-img")

        def on_line(line: str, disk: dict[str, Any] = disk, lines: ToolOutput = lines) -> None:
            fraction = qemu_img_fraction(line)
            if fraction is None:
                lines.line(line)
            else:
                meter.set(disk["path"], int(fraction * int(disk["size"])))

        try:
            result = run_tool(
                command, timeout=max(deadline - time.monotonic(), 0.1), cancel=cancel, on_line=on_line
            )
        except ProcessTimeout:
            unlink_if_present(part, converted_fd)
            raise ConversionError(
                f"conversion timed out after {timeout_seconds / 60:.0f} min: raise -conversion-timeout"
            ) from None
        except BaseException:
            unlink_if_present(part, converted_fd)
            raise
        finally:
            lines.close()
        meter.finish(disk["path"])
        if result.returncode != 0:
            unlink_if_present(part, converted_fd)
            raise ConversionError(f"qemu-img convert of {disk['path']} failed: {result.output.strip()[:300]}")
        os.replace(part, output.name, src_dir_fd=converted_fd, dst_dir_fd=converted_fd)
        report.outputs.append(
            ConvertedDisk(
                disk["id"], disk["local_path"], str(output), target, 0, "", round(result.duration_seconds, 3)
            )
        )
    return report


class Convert(Step):
    """``-convert``: the disks for KVM, in ``converted/``, and ``conversion-report.json``."""

    def check(self, run: ExportRun) -> None:
        # A missing converter must fail before connecting, not after the download.
        if run.options.convert:
            run.hyper2kvm = find_hyper2kvm(run.options.hyper2kvm_path)

    def applies(self, run: ExportRun) -> bool:
        return run.manifest is not None and run.options.convert

    def run(self, run: ExportRun) -> None:
        run.phase(CONVERTING, 0.0)
        run.result.conversion = convert_export(
            run.manifest,
            run.output.path,
            hyper2kvm=run.hyper2kvm,
            timeout_seconds=run.options.conversion_timeout,
            compress=run.options.compress,
            reporter=run.reporter,
            cancel=run.cancel,
            output=run.output,
        )

    def companion_names(self, stem: str) -> list[str]:
        return [REPORT_NAME, CONVERTED_DIR]
