"""Verify an export: downloaded disks against the manifest, converted outputs against their sources."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from exports.pipeline.convert import ConversionReport
from exports.pipeline.errors import VerificationError
from exports.pipeline.files import sha256_file
from exports.pipeline.formats import target_format
from exports.pipeline.processes import ProcessTimeout, run_tool
from exports.pipeline.progress import CancelToken, ProgressReporter
from exports.pipeline.step import ExportRun, Step


def verify_export(
    manifest: dict[str, Any],
    conversion: ConversionReport | None,
    *,
    timeout_seconds: float,
    reporter: ProgressReporter,
    cancel: CancelToken,
) -> list[str]:
    """Run every check; return what was checked, or raise VerificationError on the first mismatch."""
    checked: list[str] = []
    for disk in manifest["disks"]:
        cancel.raise_if_cancelled()
        path = Path(disk["local_path"])
        if not path.exists():
            raise VerificationError(f"verify: {disk['path']} is missing")
        actual = f"sha256:{sha256_file(path)}"
        if actual != disk["checksum"]:
            raise VerificationError(
                f"verify: checksum mismatch for {disk['path']}: manifest {disk['checksum']}, file {actual}"
            )
        checked.append(f"{disk['path']}: sha256 matches the manifest")
        reporter.log(logging.INFO, checked[-1])
    nvram = manifest.get("nvram")
    if nvram is not None:
        path = Path(nvram["local_path"])
        actual = f"sha256:{sha256_file(path)}" if path.exists() else "missing"
        if actual != nvram["checksum"]:
            raise VerificationError(
                f"verify: checksum mismatch for {nvram['path']}: manifest {nvram['checksum']}, file {actual}"
            )
        checked.append(f"{nvram['path']}: sha256 matches the manifest")
        reporter.log(logging.INFO, checked[-1])
    if conversion is None:
        return checked
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise VerificationError("verify needs qemu-img (Debian package qemu-utils)")
    sources = {disk["id"]: disk["local_path"] for disk in manifest["disks"]}
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
            reporter.log(logging.INFO, checked[-1])
        result = _qemu_img(
            qemu_img,
            ["compare", "-f", "vmdk", "-F", form.qemu_format, sources[output.disk_id], output.output],
            timeout_seconds,
            cancel,
        )
        if result.returncode == 1:
            raise VerificationError(f"verify: {name} differs from its source: {_last_line(result.output)}")
        if result.returncode != 0:
            raise VerificationError(f"verify: cannot compare {name}: {_last_line(result.output)}")
        checked.append(f"{name}: identical to {Path(sources[output.disk_id]).name}")
        reporter.log(logging.INFO, checked[-1])
    return checked


def _qemu_img(qemu_img: str, args: list[str], timeout: float, cancel: CancelToken):
    try:
        return run_tool([qemu_img, *args], timeout=timeout, cancel=cancel)
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
        run.phase("verifying", 0.0)
        run.result.verified = verify_export(
            run.manifest,
            run.result.conversion,
            timeout_seconds=run.options.conversion_timeout,
            reporter=run.reporter,
            cancel=run.cancel,
        )
