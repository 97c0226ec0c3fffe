"""``-libvirt``: after conversion, ``<output>/<stem>.xml``, a libvirt domain for the converted
disks, validated by ``virt-xml-validate``; with ``-define URI``, defined there once the export
is verified, never started.

Steps: ``WriteDomain`` (after ``Convert``) and ``DefineDomain`` (last). Both refuse before
connecting what they could not do later (the validator or virsh missing, a URI not allowed);
a domain of the VM's name or UUID already at the URI is a preflight blocker (``domain-exists``),
found before any download.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import unicodedata
from pathlib import Path

from exports.pipeline.convert import REPORT_NAME
from exports.pipeline.errors import DomainError
from exports.pipeline.files import write_atomically
from exports.pipeline.formats import target_format
from exports.pipeline.names import domain_file_name
from exports.pipeline.step import ExportRun, Step
from libvirt_domain.define import DefineError, check_definable, check_uri, define_domain, find_virsh
from libvirt_domain.networks import parse_network_map
from libvirt_domain.plan import NOT_XML, DomainDisk, DomainPlan, plan_domain
from libvirt_domain.validate import VALIDATOR, InvalidDomain, find_validator, validate_domain
from libvirt_domain.xml import domain_xml

__all__ = ["DefineDomain", "WriteDomain", "converted_disks", "write_report"]


class WriteDomain(Step):
    """Plan the domain from ``run.record`` and the conversion's outputs, write it, validate it,
    and record it in the conversion report (``libvirt_domain``) and the result."""

    def check(self, run: ExportRun) -> None:
        if not run.options.libvirt:
            return
        try:
            find_validator()
        except InvalidDomain as exc:
            raise DomainError(f"libvirt domain: {exc}") from None
        output = str(run.options.output)
        if any(unicodedata.category(char) in ("Cc", "Cs") for char in output) or NOT_XML.search(output):
            # libvirt's schema takes no disk path with a newline or other control character.
            raise DomainError(
                "libvirt domain: libvirt cannot name disks under an output directory whose path holds a "
                "control character (a newline?), bytes that are not UTF-8 or a character XML cannot hold: "
                "choose another output directory"
            )

    def applies(self, run: ExportRun) -> bool:
        return run.options.libvirt and run.result is not None and run.result.conversion is not None

    def run(self, run: ExportRun) -> None:
        options, output, result = run.options, run.output, run.result
        plan = plan_domain(
            run.record,
            converted_disks(run),
            disk_bus=options.disk_bus,
            network_map=parse_network_map(options.network_map) if options.network_map else None,
        )
        name = domain_file_name(run.stem)
        path = output.track(name)
        document = domain_xml(plan).encode()
        write_atomically(path, document, dir_fd=output.fd)
        try:
            validate_domain(output.proc_path(name))
        except InvalidDomain as exc:
            raise DomainError(f"libvirt domain {name}: {exc}") from None
        result.libvirt_domain = str(path)
        result.conversion.libvirt_domain = {
            "path": str(path),
            "validated_by": VALIDATOR,
            # What the job page and downloads check the file against: a later export's is not this one's.
            "sha256": hashlib.sha256(document).hexdigest(),
            "defined": None,
            **plan.as_dict(),
        }
        write_report(run)
        _log_plan(run, plan, path)

    def companion_names(self, stem: str) -> list[str]:
        return [domain_file_name(stem)]


class DefineDomain(Step):
    """``-define URI``: ``virsh define`` the written domain, after verification, never started.
    A failure here leaves the verified export in place and is reported (``define_error`` in the
    report, an error line in the log): hours of transfer are not thrown away for it."""

    def check(self, run: ExportRun) -> None:
        if run.options.define_uri:
            try:
                check_uri(run.options.define_uri)
                find_virsh()
            except (DefineError, ValueError) as exc:
                raise DomainError(f"libvirt domain: {exc}") from None

    def applies(self, run: ExportRun) -> bool:
        return bool(run.options.define_uri) and run.result is not None and bool(run.result.libvirt_domain)

    def run(self, run: ExportRun) -> None:
        uri, result = run.options.define_uri, run.result
        domain = result.conversion.libvirt_domain
        proc_path = run.output.proc_path(Path(result.libvirt_domain).name)
        try:
            # The preflight checked before the download; checked again, as hours may have passed.
            check_definable(uri, domain["name"], domain["uuid"])
            # Through the run's descriptor: the file validated is the file defined.
            define_domain(uri, proc_path)
        except DefineError as exc:
            # The export itself is whole and verified: it stays, and says what was not done.
            domain["define_error"] = str(exc).replace(proc_path, result.libvirt_domain)
            domain["define_uri"] = uri
            write_report(run)
            run.reporter.log(
                logging.ERROR,
                f"libvirt domain not defined: {domain['define_error']}; the export is complete: "
                f"virsh -c {uri} define {shlex.quote(result.libvirt_domain)}",
            )
            return
        domain["defined"] = uri
        write_report(run)
        run.reporter.log(
            logging.INFO,
            f"libvirt domain {domain['name']!r} defined at {uri} (not started): virsh -c {uri} start {domain['name']}",
        )


def converted_disks(run: ExportRun) -> list[DomainDisk]:
    """The converted disks, each with its source disk's boot order (the manifest's)."""
    hints = {
        disk["id"]: int(disk.get("boot_order_hint", index))
        for index, disk in enumerate(run.manifest["disks"])
    }
    qemu_format = target_format(run.result.conversion.target_format).qemu_format
    return [
        DomainDisk(
            path=converted.output, format=qemu_format, boot_order=hints.get(converted.disk_id, len(hints))
        )
        for converted in run.result.conversion.outputs
    ]


def write_report(run: ExportRun) -> None:
    """Rewrite ``conversion-report.json`` with what the domain steps added."""
    document = json.dumps(run.result.conversion.as_dict(), indent=2) + "\n"
    write_atomically(run.output.path / REPORT_NAME, document.encode(), dir_fd=run.output.fd)


def _log_plan(run: ExportRun, plan: DomainPlan, path: Path) -> None:
    firmware = (
        f"efi (secure boot {'on' if plan.secure_boot else 'off'})" if plan.firmware == "efi" else "bios"
    )
    run.reporter.log(
        logging.INFO,
        f"libvirt domain {plan.name!r} written to {path}: {plan.vcpus} vCPUs ({plan.sockets} sockets of "
        f"{plan.cores} cores), {plan.memory_mib} MiB, {plan.machine}, {firmware}, {len(plan.disks)} disk(s)",
    )
    run.reporter.log(logging.INFO, f"libvirt domain: disk bus {plan.disk_bus_reason}")
    run.reporter.log(logging.INFO, f"libvirt domain: NIC model {plan.nic_model_reason}")
    # Its warnings (unmapped networks ...) were logged by the preflight; the report keeps them.
