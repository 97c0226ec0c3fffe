"""``hyperexport``: export a VM from vSphere (direct mode). Every guide spelling, - or --, works."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from exports.console import human_size, reporter_for
from exports.pipeline.connect import VCenterTarget
from exports.pipeline.convert import TARGET_FORMATS
from exports.pipeline.errors import ExportError
from exports.pipeline.options import PACKAGE_FORMATS, ExportOptions, InvalidOptions, parse_duration
from exports.pipeline.progress import CancelToken
from exports.pipeline.run import export_vm


def _flag(parser: CommandParser, name: str, **kwargs) -> None:
    """The guide writes Go-style ``-flag``; operators also type ``--flag``: accept both."""
    parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)


class Command(BaseCommand):
    help = "Export a VM from vSphere to OVF/OVA, write the Artifact Manifest, convert and verify."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        _flag(parser, "vm", required=True, metavar="PATH", help="inventory path, e.g. /dc/vm/prod/web01")
        _flag(parser, "output", metavar="DIR", help="output directory (default ./export-<vm name>)")
        _flag(parser, "format", choices=PACKAGE_FORMATS, default="ovf", help="ovf (a directory) or ova")
        _flag(parser, "compress", action="store_true", help="gzip the OVA (and zstd-compress qcow2 output)")
        _flag(
            parser, "parallel", type=int, default=4, metavar="N", help="disks downloaded at once (default 4)"
        )
        _flag(parser, "power-off", action="store_true", help="shut a running VM down first")
        _flag(parser, "manifest", action="store_true", help="write the Artifact Manifest (manifest.json)")
        _flag(parser, "manifest-target", choices=TARGET_FORMATS, default="qcow2", help="conversion target")
        _flag(parser, "convert", action="store_true", help="convert the disks after export")
        _flag(parser, "verify", action="store_true", help="verify checksums and converted disks")
        _flag(parser, "hyper2kvm-path", metavar="PATH", help="hyper2kvm binary (default: found on PATH)")
        _flag(
            parser,
            "conversion-timeout",
            default="120",
            metavar="DURATION",
            help="minutes, or 2h/90m (default 120)",
        )
        _flag(
            parser,
            "overwrite",
            action="store_true",
            help="replace a completed export in the output directory",
        )
        _flag(parser, "dry-run", action="store_true", help="check the VM and say what would happen")
        _flag(parser, "quiet", action="store_true", help="print only the result line")
        _flag(parser, "vcenter", metavar="URL", help="vCenter URL or host (default: GOVC_URL)")
        _flag(parser, "username", metavar="USER", help="vCenter user (default: GOVC_USERNAME)")
        _flag(
            parser, "password-file", metavar="FILE", help="file holding the password (default: GOVC_PASSWORD)"
        )
        _flag(parser, "insecure", action="store_true", default=None, help="skip TLS verification")
        _flag(parser, "ca-certs", metavar="FILE", help="CA bundle to trust (default: GOVC_TLS_CA_CERTS)")

    def handle(self, *args, **opts) -> None:
        try:
            options = ExportOptions(
                vm_path=opts["vm"],
                output_dir=Path(opts["output"]) if opts["output"] else None,
                format=opts["format"],
                compress=opts["compress"],
                parallel=opts["parallel"],
                power_off=opts["power_off"],
                manifest=opts["manifest"],
                manifest_target=opts["manifest_target"],
                convert=opts["convert"],
                verify=opts["verify"],
                hyper2kvm_path=opts["hyper2kvm_path"],
                conversion_timeout=parse_duration(opts["conversion_timeout"]),
                overwrite=opts["overwrite"],
                dry_run=opts["dry_run"],
            ).validate()
        except InvalidOptions as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(2)

        cancel = CancelToken()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: cancel.cancel())
        reporter = reporter_for(self.stderr._out, quiet=opts["quiet"])
        try:
            target = self._target(opts)
            result = export_vm(options, target, reporter, cancel)
        except ExportError as exc:
            reporter.close()
            self.stderr.write(f"error: {exc}")
            sys.exit(1)
        reporter.close()
        if result.dry_run:
            self.stdout.write(f"dry run: {result.vm_path} would be exported to {result.package}")
            return
        if not opts["quiet"]:
            for file in result.files:
                self.stdout.write(f"  {file.name}  {human_size(file.size)}  sha256:{file.sha256}")
            if result.manifest_path:
                self.stdout.write(f"  manifest: {result.manifest_path}")
            for converted in result.conversion.outputs if result.conversion else []:
                self.stdout.write(f"  converted: {converted.output}  {human_size(converted.size)}")
            for check in result.verified:
                self.stdout.write(f"  verified: {check}")
        self.stdout.write(
            f"success: {result.vm_name} exported to {result.output_dir} ({human_size(result.total_bytes)})"
        )

    @staticmethod
    def _target(opts: dict) -> VCenterTarget:
        password = None
        if opts["password_file"]:
            try:
                password = Path(opts["password_file"]).read_text().strip()
            except OSError as exc:
                raise ExportError(
                    f"cannot read password file {opts['password_file']}: {exc.strerror}"
                ) from None
        return VCenterTarget.from_env(
            url=opts["vcenter"],
            username=opts["username"],
            password=password,
            insecure=opts["insecure"],
            ca_file=opts["ca_certs"],
        )
