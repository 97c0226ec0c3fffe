"""``Preflight``: the export's checks (``inventory.preflight.check``) as a step, right after
``FindVM``: warnings and notes go to the log, a blocker ends the run before anything is
written or a lease taken (``PreflightBlocked``), and ``-preflight`` ends the run there with its
findings, as ``-dry-run`` does with its plan.

Also what those checks need to know of this machine (``host_facts``: free space, what the
output directory holds of the names this export writes, the converter) and of vCenter
(``export_privilege``). The names an export writes are the pipeline's own: they come from the
steps' declarations and the modules that make them, never a pattern.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from exports.pipeline.convert import REPORT_NAME
from exports.pipeline.errors import PreflightBlocked
from exports.pipeline.manifest import CONVERTED_DIR, MANIFEST_NAME
from exports.pipeline.names import disk_file_name, domain_file_name, file_stem
from exports.pipeline.options import ExportOptions
from exports.pipeline.step import ExportRun, Step
from inventory.checks import EXPORT_PRIVILEGE, HostFacts, check
from inventory.findings import Finding, blockers
from inventory.records import VMRecord
from libvirt_domain.define import DefineError, DomainExists, check_definable
from libvirt_domain.networks import parse_network_map
from libvirt_domain.plan import plan_domain

_LOG_LEVEL = {"warning": logging.WARNING, "info": logging.INFO}


def written_names(
    options: ExportOptions, record: VMRecord, steps: Sequence[Step]
) -> tuple[list[str], list[str]]:
    """(names whose presence marks a completed export, other names this export writes) in its
    output directory: the disks the lease serves (``<stem>-disk<N>.vmdk``), the NVRAM of an EFI
    VM, the ``.mf`` of an OVF, the manifest, the conversion's directory and report, and the
    libvirt domain."""
    stem = file_stem(record.name)
    markers = [name for step in steps for name in step.marker_names(stem)]
    exported = [disk for disk in record.disks if not disk.left_out_by_export]
    others = [disk_file_name(stem, number) for number in range(1, len(exported) + 1)]
    if record.firmware == "efi":
        others.append(f"{stem}.nvram")
    if options.format == "ovf":
        others.append(f"{stem}.mf")  # an OVA's is staged in the run's own directory
    if options.writes_manifest:
        others.append(MANIFEST_NAME)
    if options.convert:
        others += [CONVERTED_DIR, REPORT_NAME]
    if options.convert and options.libvirt:
        others.append(domain_file_name(stem))
    return markers, others


def other_completed_exports(
    directory: Path, steps: Sequence[Step], own_markers: list[str]
) -> tuple[str, ...]:
    """The names in ``directory`` that mark another VM's completed export (``other.ovf``: a
    marker of the steps for a stem not this export's), sorted; () when it cannot be listed."""
    suffixes = {name for step in steps for name in step.marker_names("")}  # ".ovf", ".ova"
    try:
        held = os.listdir(directory)
    except OSError:
        return ()
    return tuple(
        sorted(
            name
            for name in held
            if name not in own_markers and any(name.endswith(s) and len(name) > len(s) for s in suffixes)
        )
    )


def _nearest_existing(path: Path) -> Path | None:
    """``path``, or the closest parent of it that exists: where the export's files would land."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


def free_bytes(path: Path) -> int | None:
    """Bytes this user may still write on the file system that holds ``path`` (or would hold it:
    its nearest existing parent); None when none can be read."""
    existing = _nearest_existing(path)
    try:
        stats = os.statvfs(existing) if existing is not None else None
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize if stats is not None else None


def writable(path: Path) -> bool | None:
    """Whether the export could create its files at ``path`` (the directory, or where it would be
    made): its nearest existing directory is writable by this user on a file system mounted
    read-write. None when that cannot be read."""
    existing = _nearest_existing(path)
    if existing is None:
        return None
    if not existing.is_dir():
        return False  # a file where a directory must be: no file of the export can go there
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except OSError:
        return None
    return not read_only and os.access(existing, os.W_OK | os.X_OK)


def file_in_the_way(path: Path) -> str:
    """The path of what exists at or above ``path`` and is not a directory (a regular file where
    the output directory, or one of its parents, would be); "" when there is none."""
    existing = _nearest_existing(path)
    return str(existing) if existing is not None and not existing.is_dir() else ""


def _present(directory: Path, names: list[str]) -> tuple[str, ...]:
    try:
        held = set(os.listdir(directory))
    except OSError:
        return ()  # no directory yet (nothing collides), or unreadable: PrepareOutput will say
    return tuple(name for name in names if name in held)


def host_facts(
    options: ExportOptions,
    record: VMRecord,
    *,
    steps: Sequence[Step],
    hyper2kvm: str | None = None,
    hyper2kvm_missing: str = "",
    can_export: bool | None = None,
    surface: str = "cli",
    fresh_directory: bool = False,
) -> HostFacts:
    """What this machine offers the export of ``record`` with ``options``: free space where its
    output goes, the names it writes that are there already, and the facts given (the
    converter, the privilege, who asks). ``fresh_directory``: the output directory is made new
    for this export (a job without an output path), so nothing there collides."""
    output = options.output
    markers, others = written_names(options, record, steps)
    # What any VM's export writes under the same name: what another VM's export here would lose.
    shared = set(others) & set(written_names(options, replace(record, name=record.name + "-other"), steps)[1])
    existing = () if fresh_directory else _present(output, others)
    return HostFacts(
        **_libvirt_facts(options, record),
        output_dir=str(output),
        free_bytes=free_bytes(output),
        writable=writable(output),
        file_in_the_way=file_in_the_way(output),
        completed=() if fresh_directory else _present(output, markers),
        existing=existing,
        others_completed=() if fresh_directory else other_completed_exports(output, steps, markers),
        others_replaced=tuple(name for name in existing if name in shared),
        hyper2kvm=hyper2kvm,
        hyper2kvm_missing=hyper2kvm_missing,
        can_export=can_export,
        surface=surface,
    )


def _libvirt_facts(options: ExportOptions, record: VMRecord) -> dict[str, Any]:
    """-libvirt: the domain's plan (no disks yet); -define: whether the URI would take it."""
    facts: dict[str, Any] = {}
    if options.libvirt:
        network_map = parse_network_map(options.network_map) if options.network_map else None
        plan = plan_domain(record, [], disk_bus=options.disk_bus, network_map=network_map)
        facts["domain_plan"] = plan
        if options.define_uri:
            try:
                check_definable(options.define_uri, plan.name, plan.uuid)
            except DomainExists as exc:
                facts["domain_taken"] = str(exc)
            except DefineError as exc:
                facts["libvirt_unreachable"] = str(exc)
    return facts


def export_privilege(service_instance: Any, vm: Any) -> bool | None:
    """Whether this session holds ``VApp.Export`` on ``vm`` (AuthorizationManager
    HasPrivilegeOnEntities, vSphere 6.5+); None when vCenter does not answer the question."""
    from pyVmomi import vmodl

    try:
        content = service_instance.RetrieveContent()
        session = content.sessionManager.currentSession
        answers = content.authorizationManager.HasPrivilegeOnEntities(
            entity=[vm], sessionId=session.key, privId=[EXPORT_PRIVILEGE]
        )
    except vmodl.MethodFault:
        return None
    for answer in answers or []:
        for availability in answer.privAvailability or []:
            if availability.privId == EXPORT_PRIVILEGE:
                return bool(availability.isGranted)
    return None


class Preflight(Step):
    """Check the export before it starts: log warnings and notes, refuse on a blocker; under
    ``-preflight`` end the run with the findings."""

    needs_vcenter = True

    def run(self, run: ExportRun) -> None:
        options, record = run.options, run.record  # FindVM's, read once
        host = host_facts(
            options,
            record,
            steps=run.steps,
            hyper2kvm=run.hyper2kvm,
            can_export=export_privilege(run.service_instance, run.vm),
        )

        def findings_for(surface: str) -> list[Finding]:
            # The same facts, worded for who asks: an action names that surface's control.
            return check(record, options, replace(host, surface=surface))

        findings = findings_for("cli")
        for finding in findings:
            if finding.level in _LOG_LEVEL:
                run.reporter.log(_LOG_LEVEL[finding.level], f"preflight: {finding.line()}")
        if blockers(findings):
            raise PreflightBlocked(findings_for)
        run.reporter.log(logging.INFO, f"preflight: {summary(findings)}")
        if options.preflight:
            run.result.preflight = True
            run.result.findings = [finding.as_dict() for finding in findings]
            run.stopped = True


def summary(findings: list[Finding]) -> str:
    """``no blockers, 2 warnings, 1 note`` / ``1 blocker, ...``: counts per level."""
    counts = {level: sum(1 for f in findings if f.level == level) for level in ("blocker", "warning", "info")}
    words = [("blocker", "blockers"), ("warning", "warnings"), ("note", "notes")]
    parts = []
    for (level, count), (one, many) in zip(counts.items(), words, strict=True):
        if count or level == "blocker":
            parts.append(f"{count or 'no'} {one if count == 1 else many}")
    return ", ".join(parts)
