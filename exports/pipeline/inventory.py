"""Find the VM by inventory path, read what the export records of it (``VMFacts``), and make
sure it may be exported (powered off). Steps: ``FindVM``, ``PowerOff``.

The VM is read once, as the inventory reads it (``inventory.collect.read_vm``, one retrieval):
``run.record`` is its ``VMRecord`` and ``VMFacts`` the part of it the manifest records, in the
manifest's words (``uefi`` for efi firmware, NICs as dictionaries)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from exports.pipeline.devices import left_out_warning
from exports.pipeline.errors import ExportError, PowerOffNotAsked, VMNotFound
from exports.pipeline.names import file_stem
from exports.pipeline.progress import CancelToken, ProgressReporter
from exports.pipeline.step import ExportResult, ExportRun, Step
from inventory.collect import read_vm
from inventory.paths import split_path, visible
from inventory.records import VMRecord


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

    @classmethod
    def from_record(cls, record: VMRecord) -> VMFacts:
        """The facts of the VM ``record`` describes; warnings name what the export leaves out."""
        warnings = [
            left_out_warning(drive.label, drive.kind, drive.image, drive.backing) for drive in record.drives
        ]
        snapshots = None
        if record.snapshot_count:
            snapshots = {"count": record.snapshot_count, "current": record.current_snapshot}
            warnings.append(
                f"the VM has {record.snapshot_count} snapshot(s): the export holds its current state "
                f"(after snapshot {record.current_snapshot!r}); the snapshots themselves are not exported"
            )
        return cls(
            name=record.name,
            vm_id=record.instance_uuid or record.moref,
            datacenter=record.datacenter,
            cpu=record.cpus or 1,
            memory_mb=record.memory_mb,
            firmware="uefi" if record.firmware == "efi" else "bios",  # hyper2kvm's word
            secure_boot=record.secure_boot,
            guest_id=record.guest_id,
            nics=[{"mac": nic.mac, "network": nic.network, "adapter": nic.adapter} for nic in record.nics],
            warnings=warnings,
            snapshots=snapshots,
        )

    @property
    def os_hint(self) -> str:
        guest = self.guest_id.lower()
        if guest.startswith("win"):
            return "windows"
        if guest and not guest.startswith("other"):
            return "linux"
        return "unknown"


def find_vm(service_instance, vm_path: str) -> vim.VirtualMachine:
    """``/dc/vm/folder/name`` → the VirtualMachine, or VMNotFound."""
    path = "/".join(split_path(vm_path))  # spaces kept: "web01 " is not web01
    content = service_instance.RetrieveContent()
    found = content.searchIndex.FindByInventoryPath(path) if path else None
    if not isinstance(found, vim.VirtualMachine):
        raise VMNotFound(
            f"VM not found: {visible(vm_path)} (give the inventory path, e.g. /dc/vm/folder/name)"
        )
    return found


def wait_for_task(task: vim.Task, cancel: CancelToken | None = None) -> object:
    while task.info.state in (vim.TaskInfo.State.queued, vim.TaskInfo.State.running):
        if cancel is not None and cancel.wait(0.2):
            cancel.raise_if_cancelled()
        elif cancel is None:
            time.sleep(0.2)
    if task.info.state == vim.TaskInfo.State.error:
        raise ExportError(task.info.error.msg or "vSphere task failed")
    return task.info.result


def ensure_powered_off(
    vm: vim.VirtualMachine,
    vm_path: str,
    *,
    power_off: bool,
    reporter: ProgressReporter,
    cancel: CancelToken,
    shutdown_timeout: float = 300.0,
) -> None:
    """Refuse a running VM unless asked to stop it: guest shutdown first, power off after a timeout."""
    if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOff:
        return
    if not power_off:
        raise PowerOffNotAsked(vm_path)
    reporter.log(logging.INFO, f"shutting down the guest of {vm_path}")
    try:
        vm.ShutdownGuest()
    except (vim.fault.ToolsUnavailable, vim.fault.InvalidState, vmodl.fault.NotSupported):
        reporter.log(logging.WARNING, "guest shutdown unavailable (no VMware Tools): powering off")
    else:
        deadline = time.monotonic() + shutdown_timeout
        while time.monotonic() < deadline:
            if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOff:
                return
            if cancel.wait(1.0):
                cancel.raise_if_cancelled()
        reporter.log(logging.WARNING, f"guest did not stop within {shutdown_timeout:.0f}s: powering off")
    if vm.runtime.powerState != vim.VirtualMachinePowerState.poweredOff:
        wait_for_task(vm.PowerOffVM_Task(), cancel)


class FindVM(Step):
    """The VM at ``-vm``, its facts, and the stem of the export's file names."""

    needs_vcenter = True

    def run(self, run: ExportRun) -> None:
        run.vm = find_vm(run.service_instance, run.options.vm_path)
        run.record = read_vm(run.service_instance, run.vm)
        run.facts = VMFacts.from_record(run.record)
        run.stem = file_stem(run.facts.name)  # the files' names: the VM's, cut to fit a file name
        run.result = ExportResult(
            vm_name=run.facts.name, vm_path=run.options.vm_path, output_dir=str(run.output.path), package=""
        )


class PowerOff(Step):
    """Refuse a running VM, or stop it under ``-power-off``."""

    needs_vcenter = True

    def run(self, run: ExportRun) -> None:
        ensure_powered_off(
            run.vm,
            run.options.vm_path,
            power_off=run.options.power_off,
            reporter=run.reporter,
            cancel=run.cancel,
            shutdown_timeout=run.options.shutdown_timeout,
        )
