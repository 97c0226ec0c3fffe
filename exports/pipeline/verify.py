"""Verify an export: downloaded disks against the manifest, converted outputs against their sources.

Reports the ``verifying`` phase: bytes re-read for the SHA-256 of each file, then bytes
``qemu-img compare -p`` has read of each source and its output.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exports.pipeline.convert import ConversionReport
from exports.pipeline.errors import VerificationError
from exports.pipeline.files import sha256_file
from exports.pipeline.formats import target_format
from exports.pipeline.processes import ProcessTimeout, qemu_img_fraction, run_tool
from exports.pipeline.progress import VERIFYING, CancelToken, PhaseMeter, ProgressReporter
from exports.pipeline.step import ExportRun, Step
from hypersdk.lib.units import human_duration, human_size


def verify_export(
    manifest: dict[str, Any],
    conversion: ConversionReport | None,
    *,
    timeout_seconds: float,
    reporter: ProgressReporter,
    cancel: CancelToken,
) -> list[str]:
    """Run every check; return what was checked, or raise VerificationError on the first mismatch."""
    meter = PhaseMeter(reporter, VERIFYING)
    files = [*manifest["disks"], *([manifest["nvram"]] if manifest.get("nvram") else [])]
    for entry in files:
        meter.expect(entry["path"], int(entry["size"]))
    sources = {disk["id"]: disk["local_path"] for disk in manifest["disks"]}
    for output in conversion.outputs if conversion is not None else []:
        meter.expect(Path(output.output).name, _size(sources[output.disk_id]) + _size(output.output))
    checked: list[str] = []
    for entry in files:
        cancel.raise_if_cancelled()
        path = Path(entry["local_path"])
        if not path.exists():
            raise VerificationError(f"verify: {entry['path']} is missing")
        started = time.monotonic()
        digest = sha256_file(path, progress=lambda n, name=entry["path"]: meter.add(name, n))
        meter.finish(entry["path"])
        actual = f"sha256:{digest}"
        if actual != entry["checksum"]:
            raise VerificationError(
                f"verify: checksum mismatch for {entry['path']}: manifest {entry['checksum']}, file {actual}"
            )
        checked.append(f"{entry['path']}: sha256 matches the manifest")
        reporter.log(
            logging.INFO,
            f"verifying: {checked[-1]} ({human_size(int(entry['size']))} re-read"
            f" in {human_duration(time.monotonic() - started)})",
        )
    if conversion is None:
        return checked
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise VerificationError("verify needs qemu-img (Debian package qemu-utils)")
    for output in conversion.outputs:
        name = Path(output.output).name
        form = target_format(output.format)
        if form.checkable:  # raw has no metadata to check
            result = _qemu_img(
                qemu_img, ["check", "-f", form.qemu_format, output.output], timeout_seconds, cancel
            )
            if result.returncode != 0:
                raise VerificationError(
                    f"verify: qemu-img check of {name} failed: {_last_line(result.output)}"
                )
            checked.append(f"{name}: qemu-img check found no errors")
            reporter.log(logging.INFO, f"verifying: {checked[-1]}")
        compared = meter.expected(name)

        def on_line(line: str, name: str = name, compared: int = compared) -> None:
            fraction = qemu_img_fraction(line)
            if fraction is not None:
                meter.set(name, int(fraction * compared))

        started = time.monotonic()
        result = _qemu_img(
            qemu_img,
            ["compare", "-p", "-f", "vmdk", "-F", form.qemu_format, sources[output.disk_id], output.output],
            timeout_seconds,
            cancel,
            on_line,
        )
        meter.finish(name)
        if result.returncode == 1:
            raise VerificationError(f"verify: {name} differs from its source: {_last_line(result.output)}")
        if result.returncode != 0:
            raise VerificationError(f"verify: cannot compare {name}: {_last_line(result.output)}")
        checked.append(f"{name}: identical to {Path(sources[output.disk_id]).name}")
        reporter.log(
            logging.INFO,
            f"verifying: {checked[-1]} (compared in {human_duration(time.monotonic() - started)})",
        )
    return checked


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0  # a missing file fails its own check, with its own message


def _qemu_img(
    qemu_img: str,
    args: list[str],
    timeout: float,
    cancel: CancelToken,
    on_line: Callable[[str], None] | None = None,
):
    try:
        return run_tool([qemu_img, *args], timeout=timeout, cancel=cancel, on_line=on_line)
    except ProcessTimeout:
        raise VerificationError(f"verify: qemu-img {args[0]} timed out") from None


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


class Verify(Step):
    """``-verify``: the disks against the manifest, the converted outputs against their sources."""

    def applies(self, run: ExportRun) -> bool:
        return run.manifest is not None and run.options.verify

    def run(self, run: ExportRun) -> None:
        run.phase(VERIFYING, 0.0)
        run.result.verified = verify_export(
            run.manifest,
            run.result.conversion,
            timeout_seconds=run.options.conversion_timeout,
            reporter=run.reporter,
            cancel=run.cancel,
        )
