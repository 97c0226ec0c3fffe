"""The OVF descriptor (from vCenter's OvfManager) and the OVF manifest (``.mf``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from pyVmomi import vim, vmodl

from exports.pipeline.download import DownloadedDisk
from exports.pipeline.errors import ExportError
from exports.pipeline.files import write_atomically
from exports.pipeline.step import ExportRun, Step


def create_ovf_descriptor(service_instance, vm: vim.VirtualMachine, disks: list[DownloadedDisk]) -> str:
    """Ask vCenter for the descriptor, describing the files we actually downloaded.

    Each file names its device by the lease key it came from (disks and the NVRAM alike):
    vCenter refuses a ``deviceId`` that fits no device of the VM.
    """
    ovf_manager = service_instance.RetrieveContent().ovfManager
    params = vim.OvfManager.CreateDescriptorParams(
        name=vm.name,
        ovfFiles=[
            vim.OvfManager.OvfFile(deviceId=disk.source_key, path=disk.path.name, size=disk.size)
            for disk in disks
        ],
    )
    try:
        result = ovf_manager.CreateDescriptor(obj=vm, cdp=params)
    except (vim.fault.VimFault, vmodl.MethodFault) as exc:
        raise ExportError(f"vCenter could not describe the VM as OVF: {exc.msg}") from None
    if result.error:
        raise ExportError(f"vCenter could not describe the VM as OVF: {result.error[0].msg}")
    return result.ovfDescriptor


def ovf_manifest_text(entries: Iterable[tuple[str, str]]) -> str:
    """``SHA256(<file>)= <hex>`` lines, as govc and ovftool write them."""
    return "".join(f"SHA256({name})= {digest}\n" for name, digest in entries)


def write_descriptor_and_manifest(
    output_dir: Path, name: str, descriptor: str, disks: list[DownloadedDisk], *, dir_fd: int | None = None
) -> tuple[Path, Path]:
    """Write ``<name>.mf`` then ``<name>.ovf`` (in the directory ``dir_fd`` when given, which
    ``output_dir`` names); the descriptor lands last and marks the export whole."""
    ovf_bytes = descriptor.encode()
    entries = [(f"{name}.ovf", hashlib.sha256(ovf_bytes).hexdigest())]
    entries += [(disk.path.name, disk.sha256) for disk in disks]
    mf_path = write_atomically(output_dir / f"{name}.mf", ovf_manifest_text(entries).encode(), dir_fd=dir_fd)
    ovf_path = write_atomically(output_dir / f"{name}.ovf", ovf_bytes, dir_fd=dir_fd)
    return ovf_path, mf_path


class Describe(Step):
    """Ask vCenter for the OVF descriptor of the downloaded files (written by ``package``)."""

    needs_vcenter = True

    def run(self, run: ExportRun) -> None:
        run.phase("describing")
        run.descriptor = create_ovf_descriptor(run.service_instance, run.vm, run.files)
