"""Find the VM by inventory path, read what the export records of it (``VMFacts``), and make
sure it may be exported (powered off). Steps: ``FindVM``, ``PowerOff``, ``WarnLeftOut``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from exports.pipeline.devices import firmware_facts, left_out_devices
from exports.pipeline.errors import ExportError, PowerOffNotAsked, VMNotFound
from exports.pipeline.names import file_stem
from exports.pipeline.progress import CancelToken, ProgressReporter
from exports.pipeline.step import ExportResult, ExportRun, Step


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


def find_vm(service_instance, vm_path: str) -> vim.VirtualMachine:
    """``/dc/vm/folder/name`` → the VirtualMachine, or VMNotFound."""
    path = vm_path.strip().strip("/")
    content = service_instance.RetrieveContent()
    found = content.searchIndex.FindByInventoryPath(path) if path else None
    if not isinstance(found, vim.VirtualMachine):
        raise VMNotFound(f"VM not found: {vm_path} (give the inventory path, e.g. /dc/vm/folder/name)")
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


def read_vm_facts(vm: vim.VirtualMachine) -> VMFacts:
    """What the manifest records of the VM: read once, never changed."""
    config = vm.config
    datacenter = vm.parent
    while datacenter is not None and not isinstance(datacenter, vim.Datacenter):
        datacenter = datacenter.parent
    nics = [
        {
            "mac": device.macAddress or "",
            "network": (device.deviceInfo.summary if device.deviceInfo else "") or "",
            "adapter": type(device).__name__.rsplit(".", 1)[-1].removeprefix("Virtual").lower(),
        }
        for device in config.hardware.device
        if isinstance(device, vim.vm.device.VirtualEthernetCard)
    ]
    firmware = firmware_facts(config)
    warnings = left_out_devices(config)
    snapshots = _snapshot_facts(vm)
    if snapshots:
        warnings.append(
            f"the VM has {snapshots['count']} snapshot(s): the export holds its current state "
            f"(after snapshot {snapshots['current']!r}); the snapshots themselves are not exported"
        )
    return VMFacts(
        name=vm.name,
        vm_id=config.instanceUuid or vm._moId,
        datacenter=datacenter.name if datacenter is not None else "",
        cpu=config.hardware.numCPU or 1,
        memory_mb=config.hardware.memoryMB or 0,
        firmware=firmware.firmware,
        secure_boot=firmware.secure_boot,
        guest_id=config.guestId or "",
        nics=nics,
        warnings=warnings,
        snapshots=snapshots,
    )


def _snapshot_facts(vm: vim.VirtualMachine) -> dict[str, object] | None:
    """How many snapshots the VM has and which one its current state follows, or None."""
    info = vm.snapshot
    if info is None or not info.rootSnapshotList:
        return None
    count, current, stack = 0, "", list(info.rootSnapshotList)
    while stack:
        tree = stack.pop()
        count += 1
        if info.currentSnapshot is not None and tree.snapshot == info.currentSnapshot:
            current = tree.name
        stack.extend(tree.childSnapshotList or [])
    return {"count": count, "current": current}


class FindVM(Step):
    """The VM at ``-vm``, its facts, and the stem of the export's file names."""

    needs_vcenter = True

    def run(self, run: ExportRun) -> None:
        run.vm = find_vm(run.service_instance, run.options.vm_path)
        run.facts = read_vm_facts(run.vm)
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


class WarnLeftOut(Step):
    """Say up front, once the export is sure to start, what it leaves out: drives and snapshots
    of the VM, and compression a plain OVF does not apply."""

    def run(self, run: ExportRun) -> None:
        for warning in run.facts.warnings:
            run.reporter.log(logging.WARNING, warning)
        options = run.options
        if options.compress and options.format == "ovf" and not options.convert:
            run.reporter.log(logging.WARNING, "-compress has no effect on -format ovf without -convert")
