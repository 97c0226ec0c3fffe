"""Convert the exported disks for KVM: with hyper2kvm when available, else with qemu-img.

Outputs land in ``<output>/converted/<disk id>.<format>`` either way, and a conversion report
(``conversion-report.json``: outputs, sizes, durations, checksums) is written beside the manifest.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from exports.pipeline.errors import ConversionError
from exports.pipeline.files import sha256_file, write_atomically
from exports.pipeline.manifest import MANIFEST_NAME
from exports.pipeline.processes import ProcessTimeout, run_tool
from exports.pipeline.progress import CancelToken, ProgressReporter

TARGET_FORMATS = ("qcow2", "raw", "vdi")
HASH_CHUNK = 8 << 20
_ZEROS = memoryview(bytes(HASH_CHUNK))
REPORT_NAME = "conversion-report.json"


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_hyper2kvm(explicit: str | None) -> str | None:
    """The configured hyper2kvm binary, else one on PATH; None means use qemu-img."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ConversionError(f"hyper2kvm not found or not executable: {explicit}")
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
) -> ConversionReport:
    target = manifest["output"]["format"]
    converted_dir = Path(manifest["output"]["directory"])
    converted_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if hyper2kvm:
        report = _with_hyper2kvm(
            hyper2kvm, output_dir, converted_dir, target, timeout_seconds, reporter, cancel
        )
    else:
        report = _with_qemu_img(manifest, converted_dir, target, timeout_seconds, compress, reporter, cancel)
    for disk in manifest["disks"]:
        output = converted_dir / f"{disk['id']}.{target}"
        if not output.exists():
            raise ConversionError(f"conversion produced no {output.name}")
        previous = next((o for o in report.outputs if o.disk_id == disk["id"]), None)
        if previous is None:
            report.outputs.append(
                ConvertedDisk(disk["id"], disk["local_path"], str(output), target, 0, "", 0.0)
            )
    for converted in report.outputs:
        converted.size = os.path.getsize(converted.output)
        converted.sha256 = sha256_sparse_file(Path(converted.output))
    report.duration_seconds = round(time.monotonic() - started, 3)
    write_atomically(output_dir / REPORT_NAME, (json.dumps(report.as_dict(), indent=2) + "\n").encode())
    return report


def sha256_sparse_file(path: Path) -> str:
    """SHA-256 of a file, its holes hashed from a zero buffer instead of read.

    A raw output of a thin disk is mostly holes (9 GiB of capacity, a few MiB of data): reading
    them would copy gigabytes of zero pages for nothing. The digest is the same as of a plain
    read. Where the filesystem cannot report holes (no SEEK_DATA), the file is simply read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        position = 0
        while position < size:
            try:
                data = os.lseek(fd, position, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole up to the end
                    data = size
                elif position == 0:
                    return sha256_file(path)
                else:
                    raise
            while position < data:  # the hole: zeros
                step = min(HASH_CHUNK, data - position)
                digest.update(_ZEROS[:step])
                position += step
            if position >= size:
                break
            hole = os.lseek(fd, position, os.SEEK_HOLE)
            handle.seek(position)
            while position < hole:
                chunk = handle.read(min(HASH_CHUNK, hole - position))
                if not chunk:
                    raise ConversionError(f"{path.name} shrank while it was being hashed")
                digest.update(chunk)
                position += len(chunk)
    return digest.hexdigest()


def _with_hyper2kvm(
    binary: str,
    output_dir: Path,
    converted_dir: Path,
    target: str,
    timeout_seconds: float,
    reporter: ProgressReporter,
    cancel: CancelToken,
) -> ConversionReport:
    manifest_path = output_dir / MANIFEST_NAME
    reporter.log(logging.INFO, f"converting with {binary} --manifest {manifest_path}")
    try:
        result = run_tool(
            [binary, "--manifest", str(manifest_path)],
            timeout=timeout_seconds,
            cancel=cancel,
            on_line=lambda line: reporter.log(logging.INFO, f"hyper2kvm: {line}"),
        )
    except ProcessTimeout:
        raise ConversionError(
            f"conversion timed out after {timeout_seconds / 60:.0f} min: raise -conversion-timeout"
        ) from None
    except FileNotFoundError:
        raise ConversionError(f"hyper2kvm not found: {binary}") from None
    if result.returncode != 0:
        last = next((line for line in reversed(result.output.splitlines()) if line.strip()), "")
        raise ConversionError(f"hyper2kvm failed (exit {result.returncode}): {last.strip()[:300]}")
    report = ConversionReport(converter="hyper2kvm", target_format=target)
    tool_report = converted_dir / "report.json"
    if tool_report.exists():
        report.converter_report = str(tool_report)
        for disk in _hyper2kvm_outputs(tool_report):
            report.outputs.append(ConvertedDisk(disk["disk_id"], "", disk["output_path"], target, 0, "", 0.0))
    return report


def _hyper2kvm_outputs(report_path: Path) -> list[dict[str, Any]]:
    try:
        stages = json.loads(report_path.read_text())["pipeline"]["stages"]
        return list(stages["convert"]["result"]["converted_disks"])
    except (KeyError, TypeError, ValueError):
        return []


def _with_qemu_img(
    manifest: dict[str, Any],
    converted_dir: Path,
    target: str,
    timeout_seconds: float,
    compress: bool,
    reporter: ProgressReporter,
    cancel: CancelToken,
) -> ConversionReport:
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise ConversionError("no converter: install hyper2kvm or qemu-img (Debian package qemu-utils)")
    report = ConversionReport(converter="qemu-img", target_format=target)
    deadline = time.monotonic() + timeout_seconds
    for disk in manifest["disks"]:
        output = converted_dir / f"{disk['id']}.{target}"
        part = output.with_name(output.name + ".part")
        # -m/-W: parallel coroutines, out-of-order writes; zstd is the fast qcow2 compression.
        command = [qemu_img, "convert", "-m", "8", "-W", "-f", "vmdk", "-O", target]
        if compress and target == "qcow2":
            command += ["-c", "-o", "compression_type=zstd"]
        command += [disk["local_path"], str(part)]
        reporter.log(logging.INFO, f"converting {disk['path']} to {target}")
        try:
            result = run_tool(command, timeout=max(deadline - time.monotonic(), 0.1), cancel=cancel)
        except ProcessTimeout:
            part.unlink(missing_ok=True)
            raise ConversionError(
                f"conversion timed out after {timeout_seconds / 60:.0f} min: raise -conversion-timeout"
            ) from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        if result.returncode != 0:
            part.unlink(missing_ok=True)
            raise ConversionError(f"qemu-img convert of {disk['path']} failed: {result.output.strip()[:300]}")
        os.replace(part, output)
        report.outputs.append(
            ConvertedDisk(
                disk["id"], disk["local_path"], str(output), target, 0, "", round(result.duration_seconds, 3)
            )
        )
    return report
