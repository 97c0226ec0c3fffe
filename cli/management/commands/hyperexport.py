"""``hyperexport``: export a VM from vSphere (direct mode), or hand it to the daemon (--use-daemon,
--daemon-watch, --daemon-list, --daemon-status, --daemon-schedule). Every guide spelling, - or
--, works."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from django.core.management.base import CommandParser

from cli.console import reporter_for
from cli.console_script import ConsoleScriptCommand
from cli.flags import add_connection_flags, add_option_flags, engine_options_from_flags
from cli.render import domain_lines
from cli.render_preflight import exit_status, preflight_lines
from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import ExportError, PreflightBlocked
from exports.pipeline.options import ExportOptions, InvalidOptions
from exports.pipeline.progress import CancelToken
from exports.pipeline.run import export_vm
from hypersdk.lib.units import human_size

# The daemon's job states (exports.models.Job.Status), spelled out: the direct mode loads no models.
DAEMON_LIST_CHOICES = ("all", "pending", "running", "completed", "failed", "cancelled")
DAEMON_MODES = ("use_daemon", "daemon_watch", "daemon_list", "daemon_status", "daemon_schedule")
# The modes that describe an export job, so need its -vm.
JOB_MODES = (None, "use_daemon", "daemon_schedule")
# Direct-mode flags with no meaning for a daemon job: the daemon has its own vCenter settings.
DIRECT_ONLY = ("dry_run", "username", "password_file", "insecure", "ca_certs")


def _flag(parser: CommandParser, name: str, **kwargs) -> None:
    """The guide writes Go-style ``-flag``; operators also type ``--flag``: accept both."""
    parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)


def daemon_mode(opts: dict) -> str | None:
    mode = next((mode for mode in DAEMON_MODES if opts.get(mode)), None)
    if mode is None and opts.get("preflight") and opts.get("daemon_url"):
        return "use_daemon"  # -preflight --daemon-url: the daemon's preflight (POST /vms/preflight)
    return mode


class Command(ConsoleScriptCommand):
    help = "Export a VM from vSphere to OVF/OVA, write the Artifact Manifest, convert and verify."
    requires_system_checks: list[str] = []

    def run_from_argv(self, argv: list[str]) -> None:
        """From a shell (the console script or manage.py): a gone reader or an unwritable stdout
        ends in one line, never a traceback (cli.pipes)."""
        from django.core.management.base import OutputWrapper

        from cli.pipes import quiet_on_broken_pipe

        program, name = Path(argv[0]).name, argv[1]
        with quiet_on_broken_pipe(name if program == name else f"{program} {name}"):
            self.stdout = OutputWrapper(sys.stdout)  # the guarded stdout, not the one at __init__
            super().run_from_argv(argv)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        self.parser = super().create_parser(prog_name, subcommand, **kwargs)
        return self.parser

    def add_arguments(self, parser: CommandParser) -> None:
        # Valued flags default to None so a daemon job carries only what was asked; the direct
        # mode applies its defaults (the ones in the help) itself.
        _flag(parser, "vm", metavar="PATH", help="inventory path, e.g. /dc/vm/prod/web01 (required)")
        _flag(
            parser,
            "output",
            metavar="DIR",
            help="output directory (default ./export-<vm name>; with --use-daemon: chosen by the daemon)",
        )
        add_option_flags(parser)
        _flag(parser, "dry-run", action="store_true", help="check the VM and say what would happen")
        _flag(parser, "quiet", action="store_true", help="print only the result line")
        _flag(
            parser,
            "vcenter",
            metavar="URL",
            help="vCenter URL or host (default: GOVC_URL); with --use-daemon: a vCenter's name in the daemon",
        )
        _flag(parser, "username", metavar="USER", help="vCenter user (default: GOVC_USERNAME)")
        _flag(
            parser, "password-file", metavar="FILE", help="file holding the password (default: GOVC_PASSWORD)"
        )
        _flag(parser, "insecure", action="store_true", default=None, help="skip TLS verification")
        _flag(parser, "ca-certs", metavar="FILE", help="CA bundle to trust (default: GOVC_TLS_CA_CERTS)")

        daemon = parser.add_argument_group(
            "daemon modes (local services, or --daemon-url / $HYPERSDK_DAEMON_URL)"
        )
        modes = daemon.add_mutually_exclusive_group()
        _flag(
            modes, "use-daemon", action="store_true", help="submit the export as a daemon job, print its id"
        )
        _flag(modes, "daemon-watch", metavar="JOB_ID", help="follow a daemon job until it ends")
        _flag(
            modes,
            "daemon-list",
            choices=DAEMON_LIST_CHOICES,
            metavar="STATUS",
            help="list daemon jobs: all, running, completed, failed, ...",
        )
        _flag(
            modes, "daemon-status", action="store_true", help="the daemon's health, uptime, jobs and machine"
        )
        _flag(
            modes,
            "daemon-schedule",
            metavar="NAME:CRON",
            help='create a schedule exporting -vm at each cron time, e.g. "daily-backup:0 3 * * *"',
        )
        _flag(daemon, "watch", action="store_true", help="with --use-daemon: follow the job until it ends")
        add_connection_flags(daemon)

    def handle(self, *args, **opts) -> None:
        mode = daemon_mode(opts)
        self._check_usage(opts, mode)
        if mode:
            # Imported here: the daemon modes load the ORM, the direct mode never does.
            import django
            from django.apps import apps

            if not apps.ready:  # the console script skips set-up unless it saw a daemon flag
                django.setup()
            from cli.hyperexport_daemon import run_daemon_mode
            from cli.terminal import Terminal

            code = run_daemon_mode(mode, opts, Terminal(self.stdout._out, self.stderr._out))
            if code:
                sys.exit(code)
            return
        try:
            options = ExportOptions(
                vm_path=opts["vm"],
                # Resolved now: the export then opens each component without following symlinks.
                output_dir=Path(opts["output"]).expanduser().resolve() if opts["output"] else None,
                **engine_options_from_flags(opts),
                dry_run=opts["dry_run"],
            ).validate()
        except InvalidOptions as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(2)

        cancel = CancelToken()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._end_preflight if options.preflight else lambda *_: cancel.cancel())
        # A preflight's findings are its answer, on stdout: the step's log lines would repeat them.
        reporter = reporter_for(self.stderr._out, quiet=opts["quiet"] or options.preflight)
        try:
            target = self._target(opts)
            result = export_vm(options, target, reporter, cancel)
        except ExportError as exc:
            reporter.close()
            if options.preflight:
                self._preflight_failed(options, exc, quiet=opts["quiet"])
            self.stderr.write(f"error: {exc}")
            sys.exit(1)
        reporter.close()
        if result.preflight:
            for line in preflight_lines(options.vm_path, result.findings, quiet=opts["quiet"]):
                self.stdout.write(line)
            return
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
            for line in domain_lines({"result": result.as_dict()}):
                self.stdout.write(f"  {line}")
        self.stdout.write(
            f"success: {result.vm_name} exported to {result.output_dir} ({human_size(result.total_bytes)})"
        )

    def _end_preflight(self, signum: int, frame: object) -> None:
        """SIGINT/SIGTERM during a preflight: end now. A preflight has taken no lease and written
        nothing, so there is nothing to undo; its read may be waiting on a vCenter that stopped
        answering (up to the SOAP call timeout, and its log-out as long again)."""
        self.stdout.flush()
        self.stderr.write("error: preflight cancelled")
        self.stderr.flush()
        os._exit(1)

    def _preflight_failed(self, options: ExportOptions, exc: ExportError, *, quiet: bool) -> None:
        """A preflight that found blockers, or whose VM or vCenter stands for one: print the
        findings and exit 1. Any other failure falls through to the ``error:`` line."""
        from dataclasses import asdict

        from inventory.checks import finding_for_error

        if isinstance(exc, PreflightBlocked):
            findings = [asdict(finding) for finding in exc.findings]
        else:
            finding = finding_for_error(exc)
            if finding is None:
                return
            findings = [asdict(finding)]
        for line in preflight_lines(options.vm_path, findings, quiet=quiet):
            self.stdout.write(line)
        sys.exit(exit_status(findings))

    def _check_usage(self, opts: dict, mode: str | None) -> None:
        if mode in JOB_MODES and not opts["vm"]:
            self.parser.error("the following arguments are required: -vm")
        if opts["watch"] and mode != "use_daemon":
            self.parser.error("--watch follows a submitted job: give it with --use-daemon")
        if opts["watch"] and opts["preflight"]:
            self.parser.error("-preflight answers at once, no job to follow: leave out --watch")
        if mode is None:
            if opts["daemon_url"] or opts["token_file"]:
                self.parser.error(
                    "--daemon-url and --token-file go with --use-daemon, --daemon-watch, --daemon-list, "
                    "--daemon-status or --daemon-schedule"
                )
            return
        direct_only = [f"-{name.replace('_', '-')}" for name in DIRECT_ONLY if opts[name]]
        if direct_only:
            self.parser.error(
                f"{', '.join(direct_only)}: direct exports only; the daemon uses its own vCenter settings"
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
