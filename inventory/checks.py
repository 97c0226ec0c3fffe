"""What preflight checks, as a pure function: ``check(record, options, host)`` takes a VM as the
inventory reads it (``VMRecord``), the export asked for (``ExportOptions``) and what the
machine that would write it offers (``HostFacts``), and returns findings
(``inventory.findings.Finding``), blockers first. No I/O, no Django: ``hyperexport``'s direct
mode and the pipeline's ``Preflight`` step use it without settings.

Levels (why each is what it is: NOTES-docs.md, the README's finding table):

- blocker: the export would fail, or finish without data the VM has (a disk ExportVm leaves
  out), or replace what it must not. The run stops before any lease is taken.
- warning: it runs, but the operator should know (what is not exported, what is replaced).
- info: what the export will do that the operator may not expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from inventory.findings import Finding
from inventory.records import DiskRecord, VMRecord
from libvirt_domain.networks import escaped

if TYPE_CHECKING:
    from exports.pipeline.errors import ExportError
    from exports.pipeline.options import ExportOptions
    from libvirt_domain.plan import DomainPlan

__all__ = ["EXPORT_PRIVILEGE", "HostFacts", "check", "finding_for_error", "required_bytes"]

# The vSphere privilege ExportVm needs on the VM ("Export" under vApp in the role editor).
EXPORT_PRIVILEGE = "VApp.Export"


@dataclass(frozen=True)
class HostFacts:
    """What the export's side offers, read by the caller (``exports.pipeline.preflight.host_facts``).

    ``output_dir``: the directory the export would write (absolute). ``free_bytes``: space
    available to this user on its file system (statvfs ``f_bavail × f_frsize`` of the nearest
    existing directory), None when it cannot be read. ``writable``: whether this user may create
    files there (False on a read-only mount too; None unknown). ``completed``: names of a completed
    export there already (``<stem>.ovf``/``.ova``); ``existing``: other names the export would
    write that exist there already. ``others_completed``: names of another VM's completed export
    there (``other.ovf``); ``others_replaced``: the names of ``existing`` any VM's export writes
    (``manifest.json``, ``converted``, the conversion report), which this one would replace. ``hyper2kvm``: the converter a ``-convert`` would run (None:
    qemu-img); ``hyper2kvm_missing``: the one asked for (``hyper2kvm_path``) that cannot run,
    "" when none is. ``can_export``: whether the session holds ``VApp.Export`` on the VM, None
    when vCenter does not say. ``file_in_the_way``: what exists at or above ``output_dir`` and is
    not a directory (a regular file), "" when nothing is. ``surface``: who asks (cli, api, dashboard, schedule), so an
    action names that surface's own control for an option. ``domain_plan``: with ``-libvirt``,
    the domain the export would write (its disks not yet known). ``domain_taken``/
    ``libvirt_unreachable``: with ``-define``, why libvirt at the URI would refuse it, "" if not.
    """

    output_dir: str
    free_bytes: int | None = None
    writable: bool | None = None
    completed: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    others_completed: tuple[str, ...] = ()
    others_replaced: tuple[str, ...] = ()
    hyper2kvm: str | None = None
    hyper2kvm_missing: str = ""
    can_export: bool | None = None
    surface: str = "cli"
    file_in_the_way: str = ""
    domain_plan: DomainPlan | None = None
    domain_taken: str = ""
    libvirt_unreachable: str = ""


def _how(option: str, surface: str) -> str | None:
    from exports.pipeline.options import OPTION

    return OPTION[option].how_to_ask(surface)


def _size(value: int) -> str:
    from hypersdk.lib.units import human_size

    return human_size(value)


def _names(items: list[str] | tuple[str, ...], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check(record: VMRecord, options: ExportOptions, host: HostFacts) -> list[Finding]:
    """Every finding about exporting ``record`` with ``options`` to ``host``: blockers first,
    then warnings, then info; each level in the order the checks run."""
    findings = [
        *_inaccessible(record),
        *_power(record, options, host.surface),
        *_encryption(record),
        *_privilege(record, host),
        *_left_out_disks(record),
        *_datastores(record),
        *_output(record, options, host),
        *_converter(options, host),
        *_snapshots(record),
        *_drives(record),
        *_template(record),
        *_firmware(record, options),
        *_libvirt(record, options, host),
        *_options(options),
    ]
    order = {"blocker": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda finding: order[finding.level])


def _inaccessible(record: VMRecord) -> list[Finding]:
    """A VM whose configuration vCenter cannot read has no disks to export that it knows of:
    ExportVm fails, and every other check would read an empty VM."""
    if record.connection_state == "connected":
        return []
    return [
        Finding(
            "blocker",
            "vm-inaccessible",
            f"VM {record.path or record.name} is {record.connection_state}: vCenter cannot read the VM's "
            "configuration (its datastore is down, or the VM is orphaned)",
            "bring the datastore back or re-register the VM (remove it from the inventory, then register "
            "its .vmx), then check again",
        )
    ]


def _power(record: VMRecord, options: ExportOptions, surface: str) -> list[Finding]:
    if record.power_state == "off":
        return []
    state = "powered on" if record.power_state == "on" else record.power_state
    if not options.power_off:
        # Worded as PowerOffNotAsked: the refusal reads the same before and after this check.
        how = _how("power_off", surface)
        return [
            Finding(
                "blocker",
                "powered-on",
                f"VM {options.vm_path} is {state}",
                f"shut it down first, or {how} to stop it" if how else "shut it down first",
            )
        ]
    wait = f"{options.shutdown_timeout / 60:g} min"
    lost = "; its suspended memory state is discarded" if record.power_state == "suspended" else ""
    return [
        Finding(
            "info",
            "powered-on",
            f"VM {options.vm_path} is {state}: the export stops it first (guest shutdown, "
            f"powered off after {wait}){lost}",
            "nothing to do; shut it down yourself first for a clean guest stop",
        )
    ]


def _encryption(record: VMRecord) -> list[Finding]:
    if not record.encrypted:
        return []
    return [
        Finding(
            "blocker",
            "encrypted",
            "the VM is encrypted: vSphere refuses to export an encrypted VM (OVF export is not supported)",
            "decrypt it first (VM Policies: set the storage policy to Datastore Default), or export a "
            "decrypted clone",
        )
    ]


def _privilege(record: VMRecord, host: HostFacts) -> list[Finding]:
    if host.can_export is not False:
        return []  # granted, or vCenter does not say: the export will tell
    return [
        Finding(
            "blocker",
            "no-export-privilege",
            f"the vCenter user lacks the {EXPORT_PRIVILEGE} privilege on {record.name} "
            "(vApp > Export): vCenter would refuse the export",
            f"grant a role with {EXPORT_PRIVILEGE} on the VM (or a folder above it) to the user",
        )
    ]


def _disk_what(disk: DiskRecord) -> str:
    if disk.rdm is not None:
        return f"{disk.label} (raw device mapping, {disk.rdm} compatibility)"
    return f"{disk.label} ({disk.mode.replace('_', '-')})"


def _left_out_disks(record: VMRecord) -> list[Finding]:
    """ExportVm serves neither independent disks nor RDMs: the export would finish without them.

    A blocker, with no option to accept it: an export that silently lacks a disk the guest
    mounts (or boots from) is worse than none. Leaving the disk out on purpose is one edit of
    the VM (or a clone) in vSphere, where it is visible.
    """
    findings = []
    independent = [d for d in record.disks if d.independent and d.rdm is None]
    rdms = [d for d in record.disks if d.rdm is not None]
    if independent:
        findings.append(
            Finding(
                "blocker",
                "independent-disk",
                f"independent disk(s) {_names([_disk_what(d) for d in independent])}: vSphere's export "
                "leaves independent disks out, so their data would be missing",
                "make them dependent (disk mode: Dependent) while the VM is off, or remove them from the "
                "VM (or a clone) if their data is not wanted",
            )
        )
    if rdms:
        findings.append(
            Finding(
                "blocker",
                "rdm-disk",
                f"raw device mapping(s) {_names([_disk_what(d) for d in rdms])}: vSphere's export leaves "
                "RDMs out, so the LUN's data would be missing",
                "copy the LUN into a virtual disk (migrate the VM's storage with the disk format set to "
                "thin or thick) or remove the RDM if its data is not wanted",
            )
        )
    return findings


def _datastores(record: VMRecord) -> list[Finding]:
    down = [d for d in record.disks if not d.datastore_accessible and not d.left_out_by_export]
    if not down:
        return []
    stores = sorted({d.datastore or "?" for d in down})
    return [
        Finding(
            "blocker",
            "datastore-inaccessible",
            f"disk(s) {_names([d.label for d in down])} are on datastore(s) {_names(stores)}, which "
            "vCenter reports inaccessible: the download would fail",
            "bring the datastore back (storage paths, NFS mount) or move the disks, then check again",
        )
    ]


def required_bytes(record: VMRecord, options: ExportOptions) -> tuple[int, list[str]]:
    """The most space the export needs at once in its output directory, in bytes, and what
    makes it up (one phrase each).

    The disk files the lease serves (``estimated_export_bytes``); an OVA copies them into the
    tar before the loose ones go (×2), and ``-compress`` first stages gzipped copies in the
    run's directory (×3 at most: stream-optimized VMDKs hardly shrink); ``-convert`` writes
    each disk's data again, uncompressed (each exported disk's allocated bytes, else its
    capacity) while the downloads stay.
    """
    download = record.estimated_export_bytes
    parts = [f"{_size(download)} of disk files"]
    total = download
    if options.format == "ova":
        copies = 2 if options.compress else 1
        total += copies * download
        parts.append(
            f"{_size(copies * download)} to pack the OVA" + (" (gzip copies too)" if copies > 1 else "")
        )
    if options.convert:
        converted = sum(
            d.allocated_bytes if d.allocated_bytes is not None else d.capacity_bytes
            for d in record.disks
            if not d.left_out_by_export
        )
        total += converted
        parts.append(f"{_size(converted)} of {options.manifest_target} output")
    return total, parts


def _output(record: VMRecord, options: ExportOptions, host: HostFacts) -> list[Finding]:
    findings = []
    if host.completed and not options.overwrite:
        # Worded as CompletedExportHere: the refusal reads the same before and after this check.
        how = _how("overwrite", host.surface)
        findings.append(
            Finding(
                "blocker",
                "name-collision",
                f"{host.output_dir} already holds a completed export ({host.completed[0]})",
                f"{how} to replace it" if how else "choose another output directory",
            )
        )
    elif host.completed:
        findings.append(
            Finding(
                "info",
                "name-collision",
                f"{host.output_dir} holds a completed export ({_names(list(host.completed))}): this export "
                "replaces it",
                "nothing to do; the previous export is kept until the new one is complete",
            )
        )
    if host.others_completed and host.others_replaced:
        # The names an export shares with any other (manifest.json, converted/, the conversion
        # report) would replace that VM's: the job refuses here rather than break its export.
        findings.append(
            Finding(
                "blocker",
                "name-collision",
                f"{host.output_dir} holds the completed export of another VM ({_names(list(host.others_completed))}): "
                f"this export would replace its {_names(list(host.others_replaced))}",
                "export each VM into a directory of its own: choose another output directory",
            )
        )
    # The rest are loose files (a failed run's), not a completed export of any VM.
    said = host.others_replaced if host.others_completed else ()
    loose = [name for name in host.existing if name not in said]
    if loose and not host.completed:
        findings.append(
            Finding(
                "warning",
                "name-collision",
                f"{host.output_dir} holds {_names(loose)}, not a completed export: the "
                "export writes files of these names and replaces them when it succeeds",
                "move them away first if you need them, or choose another output directory",
            )
        )
    if host.file_in_the_way:
        where = "" if host.file_in_the_way == host.output_dir else f" cannot be made: {host.file_in_the_way}"
        findings.append(
            Finding(
                "blocker",
                "output-not-writable",
                f"output directory {host.output_dir}{where} is a file, not a directory",
                "move the file away, or choose another output directory",
            )
        )
    elif host.writable is False:
        # Worded as PrepareOutput's refusal; the free space of a directory no file can go to is moot.
        findings.append(
            Finding(
                "blocker",
                "output-not-writable",
                f"output directory {host.output_dir} is not writable",
                "make it writable for the user the export runs as (a read-only mount too), or choose "
                "another output directory",
            )
        )
    elif host.free_bytes is not None:
        needed, parts = required_bytes(record, options)
        if host.free_bytes < needed:
            findings.append(
                Finding(
                    "blocker",
                    "free-space",
                    f"{_size(host.free_bytes)} free where {host.output_dir} is, the export needs about "
                    f"{_size(needed)} ({' + '.join(parts)})",
                    "free space there or choose an output directory on a larger file system",
                )
            )
    return findings


def _converter(options: ExportOptions, host: HostFacts) -> list[Finding]:
    if not options.convert:
        return []
    if host.hyper2kvm_missing:
        return [_converter_missing(f"hyper2kvm not found or not executable: {host.hyper2kvm_missing}")]
    if host.hyper2kvm is None:
        return [
            Finding(
                "info",
                "hyper2kvm-missing",
                "no hyper2kvm found: qemu-img converts the disks' format only; the guest is not "
                "prepared for KVM (virtio drivers, fstab, bootloader)",
                "install hyper2kvm (pip install hyper2kvm) to have the guest prepared too",
            )
        ]
    return []


def _converter_missing(reason: str) -> Finding:
    return Finding(
        "blocker",
        "hyper2kvm-missing",
        reason,
        "install hyper2kvm there, or leave the hyper2kvm path empty to auto-detect it "
        "(qemu-img converts when there is none)",
    )


def _snapshots(record: VMRecord) -> list[Finding]:
    if not record.snapshot_count:
        return []
    after = f" (after snapshot {record.current_snapshot!r})" if record.current_snapshot else ""
    return [
        Finding(
            "warning",
            "snapshots",
            f"the VM has {record.snapshot_count} snapshot(s): the export holds its current state{after}; "
            "the snapshots themselves are not exported",
            "revert to the snapshot you want exported first, or consolidate if the current state is it",
        )
    ]


def _drives(record: VMRecord) -> list[Finding]:
    findings = []
    for drive in record.drives:
        kind = "CD-ROM" if drive.kind == "cdrom" else "floppy"
        source = f"image {drive.image}" if drive.image else "a client or host device"
        code = f"{drive.kind}-connected"
        # A powered-off VM's drive is connected to nothing (vCenter says connected=false): what
        # counts is whether it connects at power-on, as the imported VM would.
        connected = drive.connected and record.power_state != "off"
        if connected or drive.start_connected:
            state = f"is connected to {source}" if connected else f"connects at power-on to {source}"
            if drive.image:
                media = "ISO" if drive.kind == "cdrom" else "image"
                action = f"copy the {media} over yourself if the guest needs it, or disconnect the drive"
            else:  # a device of a client or the host: no file to copy
                action = "attach media to the imported VM if the guest needs it, or disconnect the drive"
            findings.append(
                Finding(
                    "warning",
                    code,
                    f"{drive.label} ({kind}) {state}: it is not exported; the imported VM gets an "
                    f"empty {kind} drive",
                    action,
                )
            )
        elif drive.image:
            findings.append(
                Finding(
                    "info",
                    code,
                    f"{drive.label} ({kind}, not connected) names {source}, which is not exported",
                    "nothing to do",
                )
            )
    return findings


def _template(record: VMRecord) -> list[Finding]:
    if not record.template:
        return []
    # vSphere exports a template as it exports a VM (always powered off, so never refused).
    return [
        Finding(
            "info",
            "template",
            f"{record.name} is a template: it is exported as a VM (the OVF describes a VM, not a template)",
            "mark it as a template again where you import it, if you want one",
        )
    ]


def _firmware(record: VMRecord, options: ExportOptions) -> list[Finding]:
    if record.firmware != "efi":
        return []
    secure = record.secure_boot
    if options.convert and options.manifest_target == "vdi":
        where = "VirtualBox must boot it with EFI"
        action = "enable EFI in the VirtualBox VM (System > Enable EFI)"
        if secure:
            action += "; VirtualBox before 7.0 has no secure boot: turn it off in the guest first"
    else:
        where = "the KVM side needs UEFI firmware (OVMF; libvirt <os firmware='efi'>)"
        action = "install OVMF (edk2-ovmf / ovmf) on the KVM host and define the domain with UEFI"
        if secure:
            action += ", its secure-boot build (OVMF_CODE.secboot.fd, SMM on) with enrolled keys"
    if secure:
        reason = f"the VM boots with EFI and secure boot: {where}, with secure boot keys enrolled"
        return [Finding("warning", "firmware-efi", reason, action)]
    return [Finding("info", "firmware-efi", f"the VM boots with EFI: {where}", action)]


def _libvirt(record: VMRecord, options: ExportOptions, host: HostFacts) -> list[Finding]:
    """-libvirt: the domain's choices and what it could not keep; -define: whether libvirt at
    the URI would take it."""
    findings = []
    leave_out = {"cli": "leave out -define", "dashboard": "leave the define URI empty"}.get(
        host.surface, 'leave "define_uri" empty'
    )
    if host.domain_taken:
        findings.append(
            Finding(
                "blocker",
                "domain-exists",
                host.domain_taken,
                f"undefine that domain first (virsh -c {options.define_uri} undefine <name>), or {leave_out}",
            )
        )
    if host.libvirt_unreachable:
        findings.append(
            Finding(
                "blocker",
                "libvirt-unreachable",
                host.libvirt_unreachable,
                f"start libvirtd there or check the URI's permissions, or {leave_out}",
            )
        )
    plan = host.domain_plan
    if plan is None:
        return findings
    mapping = {"cli": "-network-map", "dashboard": "the network map"}.get(host.surface, '"network_map"')
    for nic in plan.nics:
        if not nic.mapped:
            findings.append(
                Finding(
                    "warning",
                    "network-unmapped",
                    f"the NIC {nic.mac or '(no MAC)'} is on vSphere network {nic.network!r}, which the network "
                    "map does not name: the libvirt domain puts it on libvirt's 'default' network",
                    f"map it with {mapping} ({escaped(nic.network)}=<libvirt network> or "
                    f"{escaped(nic.network)}=bridge:<bridge>)",
                )
            )
    for warning in plan.warnings:
        if "network map" not in warning:
            findings.append(
                Finding("warning", "libvirt-domain", warning, "check the domain before starting it")
            )
    firmware = "efi" + (" with secure boot" if plan.secure_boot else "") if plan.firmware == "efi" else "bios"
    findings.append(
        Finding(
            "info",
            "libvirt-domain",
            f"the libvirt domain {plan.name!r}: {plan.machine}, {firmware}, disk bus {plan.disk_bus_reason}; "
            f"NIC model {plan.nic_model_reason}",
            "to choose another disk bus: "
            + {"cli": "-disk-bus", "dashboard": "the disk bus"}.get(host.surface, '"disk_bus"'),
        )
    )
    return findings


def _options(options: ExportOptions) -> list[Finding]:
    """Options that do nothing together: said, not refused (a schedule's flags stay valid)."""
    if options.compress and options.format == "ovf" and not options.convert:
        return [
            Finding(
                "warning",
                "compress-no-effect",
                "-compress has no effect on -format ovf without -convert",
                "use -format ova to have the disks gzipped, or drop -compress",
            )
        ]
    return []


def finding_for_error(exc: ExportError) -> Finding | None:
    """The blocker a failure before the checks stands for: the VM not found (``vm-not-found``),
    vCenter unreachable, refusing the login or the TLS handshake (``vcenter-unreachable``);
    None for other failures."""
    from exports.pipeline.errors import ConverterMissing, VCenterConnectionError, VMNotFound

    if isinstance(exc, ConverterMissing):
        return _converter_missing(str(exc))
    if isinstance(exc, VMNotFound):
        return Finding("blocker", "vm-not-found", str(exc), "check the path with `hyperctl vms list`")
    if isinstance(exc, VCenterConnectionError):
        return Finding(
            "blocker",
            "vcenter-unreachable",
            str(exc),
            "check the vCenter's URL, credentials and certificate (GOVC_* or the vCenter in the admin)",
        )
    return None
