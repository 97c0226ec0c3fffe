"""The Artifact Manifest v1.0: the guide's fields and what hyper2kvm's loader needs, in one file.

hyper2kvm resolves ``local_path`` and ``output.directory`` against its own working directory,
so both are absolute: ``hyper2kvm --manifest <dir>/manifest.json`` then works from anywhere.
Every manifest is validated against the shipped JSON Schema before it is written.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exports.pipeline.download import DownloadedDisk
from exports.pipeline.files import write_atomically
from exports.pipeline.names import domain_file_name
from exports.pipeline.step import ExportRun, Step

if TYPE_CHECKING:
    from exports.pipeline.inventory import VMFacts

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "artifact-manifest-v1.schema.json"
MANIFEST_NAME = "manifest.json"
CONVERTED_DIR = "converted"


@cache
def _validator():  # -> jsonschema.protocols.Validator
    import jsonschema  # imported when first needed: it costs a tenth of a second at start-up

    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def validate_manifest(document: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise ValueError(f"invalid Artifact Manifest at {where}: {first.message}")


def memory_gib(memory_mb: int) -> int:
    """The manifest's ``vm.mem_gb``: ``memory_mb`` in GiB rounded up, at least 1 (32 -> 1,
    1024 -> 1, 1025 -> 2), so ``mem_gb * 1024 >= mem_mb`` always holds."""
    return max(math.ceil(memory_mb / 1024), 1)


def disk_id(path: Path) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "-", path.stem)


def build_manifest(
    *,
    vm: VMFacts,
    vm_path: str,
    vcenter: str,
    exported_at: datetime,
    disks: list[DownloadedDisk],
    output_dir: Path,
    nvram: DownloadedDisk | None = None,
    package_format: str,
    package_file: str,
    compressed: bool,
    target_format: str,
    verify_checksums: bool,
    libvirt_domain: Path | None = None,
) -> dict[str, Any]:
    stamp = exported_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict[str, Any] = {
        "version": "1.0",
        "manifest_version": "1.0",
        "source": {
            "provider": "vsphere",
            "vm_name": vm.name,
            "vm_path": vm_path,
            "vm_id": vm.vm_id,
            "datacenter": vm.datacenter,
            "vcenter": vcenter,
            "export_date": stamp,
            "export_timestamp": stamp,
            "export_method": "vsphere-export-vm",
        },
        "vm": {
            "cpu": max(vm.cpu, 1),
            # Whole GiB rounded up, at least 1: hyper2kvm's loader refuses anything but an
            # integer >= 1, and a KVM guest must get no less than the VM had. mem_mb is exact.
            "mem_gb": memory_gib(vm.memory_mb),
            "mem_mb": vm.memory_mb,
            "firmware": vm.firmware,
            "os_hint": vm.os_hint,
            "guest_id": vm.guest_id,
            "secureboot": vm.secure_boot,
        },
        "disks": [
            {
                "id": disk_id(disk.path),
                "path": disk.path.name,
                "format": "vmdk",
                "size": disk.size,
                "checksum": f"sha256:{disk.sha256}",
                "source_format": "vmdk",
                "bytes": disk.size,
                "capacity_bytes": disk.capacity_bytes,
                "local_path": str(disk.path.resolve()),
                **_device_fields(disk, index),
            }
            for index, disk in enumerate(disks)
        ],
        "nics": vm.nics,
        "output": {"directory": str((output_dir / CONVERTED_DIR).resolve()), "format": target_format},
        "package": {"format": package_format, "file": package_file, "compressed": compressed},
        "pipeline": {
            "inspect": {"enabled": False},
            "fix": {"enabled": False},
            # -compress also compresses a qcow2 target (as qemu-img -c does on our own path):
            # hyper2kvm reads it here, so a hand run of `hyper2kvm --manifest` does the same.
            "convert": {
                "enabled": True,
                **({"compress": True} if compressed and target_format == "qcow2" else {}),
            },
            "validate": {"enabled": True},
        },
        "conversion": {"target_format": target_format, "verify_checksums": verify_checksums},
    }
    if libvirt_domain is not None:
        # The directory resolved, never the file: whatever stands at that name now is replaced.
        document["output"]["libvirt_domain"] = str(libvirt_domain.parent.resolve() / libvirt_domain.name)
    if nvram is not None:
        document["nvram"] = {
            "path": nvram.path.name,
            "size": nvram.size,
            "checksum": f"sha256:{nvram.sha256}",
            "local_path": str(nvram.path.resolve()),
        }
    if vm.snapshots:
        document["source"]["snapshots"] = vm.snapshots
    if vm.warnings:
        document["warnings"] = list(vm.warnings)
    return document


def _device_fields(disk: DownloadedDisk, index: int) -> dict[str, Any]:
    """The facts of the disk's own VirtualDisk; without one, only lease order is known."""
    device = disk.device
    if device is None:
        return {"boot_order_hint": index, "disk_type": "boot" if index == 0 else "data"}
    return {
        "boot_order_hint": device.boot_order,
        "disk_type": "boot" if device.boot_order == 0 else "data",
        "label": device.label,
        "controller": {
            "bus": device.bus,
            "model": device.controller_model,
            "bus_number": device.bus_number,
            "unit_number": device.unit_number,
        },
        "provisioning": device.provisioning,
        "datastore": device.datastore,
        "source_file": device.file_name,
    }


def write_manifest(output_dir: Path, document: dict[str, Any], *, dir_fd: int | None = None) -> Path:
    """Write ``manifest.json`` in ``output_dir`` (opened as ``dir_fd`` when given)."""
    validate_manifest(document)
    data = (json.dumps(document, indent=2) + "\n").encode()
    return write_atomically(output_dir / MANIFEST_NAME, data, dir_fd=dir_fd)


def read_manifest(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    validate_manifest(document)
    return document


class WriteManifest(Step):
    """``manifest.json`` (under ``-manifest``, ``-convert`` or ``-verify``): what conversion reads."""

    def applies(self, run: ExportRun) -> bool:
        return run.options.writes_manifest

    def run(self, run: ExportRun) -> None:
        options, output = run.options, run.output
        run.phase("manifest")
        run.manifest = build_manifest(
            vm=run.facts,
            vm_path=options.vm_path,
            vcenter=run.target.netloc,
            exported_at=datetime.now(UTC),
            disks=run.disks,
            nvram=run.nvram,
            output_dir=output.path,
            package_format=options.format,
            package_file=Path(run.result.package).name,
            compressed=options.compress,
            target_format=options.manifest_target,
            verify_checksums=options.verify,
            libvirt_domain=output.path / domain_file_name(run.stem) if options.libvirt else None,
        )
        output.track(MANIFEST_NAME)
        run.result.manifest_path = str(write_manifest(output.path, run.manifest, dir_fd=output.fd))
        run.reporter.log(logging.INFO, f"Artifact Manifest written to {run.result.manifest_path}")

    def companion_names(self, stem: str) -> list[str]:
        return [MANIFEST_NAME]
