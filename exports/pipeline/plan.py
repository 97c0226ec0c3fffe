"""``-dry-run``: say what the export would do, touch nothing, and end the run there."""

from __future__ import annotations

import logging

from exports.pipeline.errors import PowerOffNotAsked
from exports.pipeline.names import domain_file_name
from exports.pipeline.step import ExportRun, Step


class DryRun(Step):
    needs_vcenter = True

    def applies(self, run: ExportRun) -> bool:
        return run.options.dry_run

    def run(self, run: ExportRun) -> None:
        from pyVmomi import vim

        options, vm = run.options, run.vm
        if vm.runtime.powerState != vim.VirtualMachinePowerState.poweredOff and not options.power_off:
            raise PowerOffNotAsked(options.vm_path)
        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        capacity = sum(d.capacityInBytes or d.capacityInKB * 1024 for d in disks)
        run.reporter.log(
            logging.INFO,
            f"dry run: would export {options.vm_path} ({len(disks)} disk(s), {capacity} bytes of capacity) "
            f"as {options.format.upper()} to {run.output.path}",
        )
        if options.convert and options.libvirt:
            run.reporter.log(
                logging.INFO,
                f"dry run: would convert the disks to {options.manifest_target} and write the libvirt domain "
                f"{run.output.path / domain_file_name(run.stem)}",
            )
        run.result.package = str(run.output.path / f"{run.stem}.{options.format}")
        run.result.dry_run = True
        run.stopped = True
