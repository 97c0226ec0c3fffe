"""The Artifact Manifest v1.0: the guide's fields and what hyper2kvm's loader needs, in one file.

hyper2kvm resolves ``local_path`` and ``output.directory`` against its own working directory,
so both are absolute: ``hyper2kvm --manifest <dir>/manifest.json`` then works from anywhere.
Every manifest is validated against the shipped JSON Schema before it is written.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from exports.pipeline.download import DownloadedDisk
from exports.pipeline.files import write_atomically

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


@dataclass(frozen=True)
class VMFacts:
    """What the manifest records of the source VM, read once from vCenter."""

    name: str
    vm_id: str
    datacenter: str
    cpu: int
    memory_mb: int
    firmware: str
    guest_id: str
    nics: list[dict[str, str]]
    secure_boot: bool = False
    # What the export leaves out of a real VM (CD-ROM/floppy images, snapshot tree), one line each.
    warnings: list[str] = field(default_factory=list)
    # Snapshots the VM has: {"count": n, "current": name}; vSphere exports the current state.
    snapshots: dict[str, Any] | None = None

    @property
    def os_hint(self) -> str:
        guest = self.guest_id.lower()
        if guest.startswith("win"):
            return "windows"
        if guest and not guest.startswith("other"):
            return "linux"
        return "unknown"


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
            "mem_gb": max(math.ceil(vm.memory_mb / 1024), 1),
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
            "convert": {"enabled": True},
            "validate": {"enabled": True},
        },
        "conversion": {"target_format": target_format, "verify_checksums": verify_checksums},
    }
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
