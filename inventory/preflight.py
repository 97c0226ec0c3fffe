"""Preflight: what would go wrong with an export, said before anything is downloaded.

The checks themselves are ``inventory.checks.check`` (pure: a VM record, the options, the
host's facts → findings). Here is the report every door answers (``PreflightReport``) and the
service that preflights a job spec (``preflight_spec``): POST /vms/preflight, ``hyperexport
-preflight`` through the local services, and the dashboard's panel call it. The pipeline's
``Preflight`` step (exports/pipeline/preflight.py) runs the same checks as a job's first phase.

This module loads no Django at import; ``preflight_spec`` imports the job spec's validation
(DRF, the ORM) when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory.checks import EXPORT_PRIVILEGE, HostFacts, check, finding_for_error, required_bytes
from inventory.findings import Finding, blockers
from inventory.records import VMRecord

__all__ = [
    "EXPORT_PRIVILEGE",
    "HostFacts",
    "PreflightReport",
    "check",
    "finding_for_error",
    "preflight_spec",
    "required_bytes",
]


@dataclass
class PreflightReport:
    """The VM (None when it could not be read) and what preflight found about exporting it."""

    vm: VMRecord | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(blockers(self.findings))

    def as_dict(self) -> dict[str, Any]:
        """``{"vm": VMRecord.summary() or None, "findings": [Finding.as_dict()], "blocked": bool}``."""
        return {
            "vm": self.vm.summary() if self.vm is not None else None,
            "findings": [finding.as_dict() for finding in self.findings],
            "blocked": self.blocked,
        }


def preflight_spec(spec: Mapping[str, Any], *, origin: str) -> PreflightReport:
    """Preflight the job ``spec`` (as POST /jobs/submit takes it) as a job from ``origin`` would run.

    Validated as submit validates it: a bad spec raises DRF's ``ValidationError`` with the same
    field errors (``{field: [message]}``). Made into ExportOptions as the worker makes a job's
    (the allowed converter; the default output root when no ``output_path``). The VM not
    found and vCenter unreachable are findings (``vm-not-found``, ``vcenter-unreachable``; vm
    None), never exceptions: a preflight's answer is its findings.
    """
    from pyVmomi import vmodl
    from rest_framework import serializers

    from exports.converters import ConverterNotAllowed, worker_converter
    from exports.job_runner import vcenter_target
    from exports.job_spec import JobSpecSerializer
    from exports.output_roots import OutputOutsideRoots, default_output_root
    from exports.pipeline.convert import find_hyper2kvm
    from exports.pipeline.errors import ExportError, VMNotFound
    from exports.pipeline.inventory import find_vm
    from exports.pipeline.options import ExportOptions, engine_values
    from exports.pipeline.preflight import export_privilege, host_facts
    from exports.pipeline.run import STEPS
    from inventory.collect import read_vm
    from inventory.service import interactive_session

    if not isinstance(spec, Mapping):
        raise serializers.ValidationError({"non_field_errors": ["a job must be a JSON object"]})
    data = JobSpecSerializer(context={"surface": origin}).run_validation(dict(spec))
    values = engine_values(data)
    try:
        # What the worker would run: the allowed converter it names, else the detected one.
        hyper2kvm = worker_converter(values["hyper2kvm_path"], convert=values["convert"])
    except ConverterNotAllowed as exc:  # unsafe since it was configured: submit refuses it too
        raise serializers.ValidationError({"hyper2kvm_path": [str(exc)]}) from None
    missing = ""
    if values["convert"] and hyper2kvm:
        try:
            find_hyper2kvm(hyper2kvm)  # allowed, but gone or not executable since
        except ExportError:
            missing, hyper2kvm = hyper2kvm, None
    try:
        # Without output_path a job writes a new directory under the default root: that root's space.
        output_dir = data.get("output_path") or str(default_output_root())
    except OutputOutsideRoots as exc:
        raise serializers.ValidationError({"output_path": [str(exc)]}) from None
    options = ExportOptions(vm_path=data["vm_path"], output_dir=Path(output_dir), **values)
    try:
        with interactive_session(vcenter_target(data["vcenter"])) as service_instance:
            vm = find_vm(service_instance, options.vm_path)
            try:
                record = read_vm(service_instance, vm)
            except vmodl.fault.ManagedObjectNotFound:  # removed since it was found
                raise VMNotFound(f"VM not found: {options.vm_path} (it was removed)") from None
            can_export = export_privilege(service_instance, vm)
    except ExportError as exc:
        finding = finding_for_error(exc)
        if finding is None:
            raise
        return PreflightReport(None, [finding])
    host = host_facts(
        options,
        record,
        steps=STEPS,
        hyper2kvm=hyper2kvm,
        hyper2kvm_missing=missing,
        can_export=can_export,
        surface=origin,
        fresh_directory=not data.get("output_path"),
    )
    return PreflightReport(record, check(record, options, host))
