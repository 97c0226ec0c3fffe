"""The export pipeline's order: the list of steps, and the rule that a failed or cancelled
run leaves nothing that looks complete. Each step is a module of its own (``step.Step``);
a new step is one module and one entry in ``STEPS``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from exports.pipeline.connect import INTERACTIVE_CALL_TIMEOUT, VCenterTarget, read_seconds, vsphere_session
from exports.pipeline.convert import Convert
from exports.pipeline.descriptor import Describe
from exports.pipeline.domain import DefineDomain, WriteDomain
from exports.pipeline.inventory import FindVM, PowerOff
from exports.pipeline.manifest import WriteManifest
from exports.pipeline.options import ExportOptions
from exports.pipeline.output import OutputDir
from exports.pipeline.package import CheckPackageNames, Package
from exports.pipeline.plan import DryRun
from exports.pipeline.preflight import Preflight
from exports.pipeline.prepare import PrepareOutput
from exports.pipeline.progress import (
    COMPLETED,
    CancelToken,
    NullReporter,
    OverallProgress,
    ProgressReporter,
    ProgressSnapshot,
    phase_weights,
)
from exports.pipeline.step import ExportedFile, ExportResult, ExportRun, Step
from exports.pipeline.transfer import Transfer
from exports.pipeline.verify import Verify

__all__ = ["STEPS", "ExportResult", "ExportedFile", "export_vm"]

# In order. The vCenter session is open from the first step until the last that needs it.
STEPS: tuple[Step, ...] = (
    FindVM(),  # the VM, its facts, the stem of the file names
    Preflight(),  # what would go wrong: a blocker stops here (-preflight: stop with the findings)
    CheckPackageNames(),  # -format ova: refuse a name no tar header holds, before downloading
    DryRun(),  # -dry-run: say what would happen, stop
    PowerOff(),  # refuse a running VM, or stop it (-power-off)
    PrepareOutput(),  # claim the output directory; set a previous export aside (-overwrite)
    Transfer(),  # <stem>-disk<N>.vmdk, <stem>.nvram, retried under a new lease
    Describe(),  # the OVF descriptor, from vCenter
    Package(),  # <stem>.ovf + <stem>.mf, or <stem>.ova
    WriteManifest(),  # manifest.json (-manifest, -convert, -verify)
    Convert(),  # converted/, conversion-report.json (-convert)
    WriteDomain(),  # <stem>.xml, the libvirt domain, validated (-libvirt)
    Verify(),  # checksums and qemu-img check (-verify)
    DefineDomain(),  # virsh define, never started (-define URI)
)


def export_vm(
    options: ExportOptions,
    target: VCenterTarget,
    reporter: ProgressReporter | None = None,
    cancel: CancelToken | None = None,
    *,
    steps: Sequence[Step] = STEPS,
) -> ExportResult:
    """Run one export end to end; raise ExportError (one-line message) on any failure."""
    options.validate()
    started = time.monotonic()
    run = ExportRun(
        options=options,
        target=target,
        # Steps report each phase's own progress; the run's percentage weighs the phases.
        reporter=OverallProgress(
            reporter or NullReporter(),
            phase_weights(
                ova=options.format == "ova",
                compress=options.compress,
                convert=options.convert,
                verify=options.verify,
            ),
        ),
        cancel=cancel or CancelToken(),
        output=OutputDir(options.output, options.run_id),
        steps=steps,
    )
    for step in steps:
        step.check(run)
    online = [index for index, step in enumerate(steps) if step.needs_vcenter]
    session_end = online[-1] + 1 if online else 0
    run.phase("connecting", 0.0)
    try:
        # A run that only reads (-preflight, -dry-run) has someone waiting for its answer: its
        # session is bounded as the inventory's is. An export's long transfer is not.
        reads_only = options.preflight or options.dry_run
        bounds = {"call_timeout": INTERACTIVE_CALL_TIMEOUT, "deadline": read_seconds()} if reads_only else {}
        with vsphere_session(target, **bounds) as service_instance:
            run.service_instance = service_instance
            _run_steps(run, steps[:session_end])
        # The later steps (conversion, verification) need no vCenter session: it is closed by now.
        run.service_instance = None
        if run.stopped:
            return run.result
        _run_steps(run, steps[session_end:])
        run.cancel.raise_if_cancelled()
        run.output.ensure_in_place()
    except BaseException:
        # Nothing of a failed or cancelled run stays; a replaced export comes back.
        run.output.discard()
        raise
    result = run.result
    result.artifacts = run.output.commit()
    result.duration_seconds = round(time.monotonic() - started, 3)
    # The last word on the job: later phases' snapshots carry no byte counts, this one must.
    run.reporter.progress(
        ProgressSnapshot(
            phase=COMPLETED, percent=100.0, bytes_done=result.total_bytes, bytes_total=result.total_bytes
        )
    )
    return result


def _run_steps(run: ExportRun, steps: Sequence[Step]) -> None:
    for step in steps:
        if run.stopped:
            return
        if step.applies(run):
            step.run(run)
