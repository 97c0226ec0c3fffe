"""Run one job on a worker: claim it, run the export engine, keep the database informed.

A single companion thread owns this job's database connection while it runs: it writes
progress (at most twice a second), log lines, the heartbeat, and polls for a cancel request
each second — so a cancel from any machine stops the transfer within a few seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import socket
import tempfile
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from exports import job_queue, live
from exports.converters import ConverterNotAllowed, worker_converter
from exports.job_recheck import JobOptionsInvalid, revalidate_job_options
from exports.models import Job, JobLog, VCenter
from exports.output_roots import OutputOutsideRoots, resolve_output_path
from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import ExportCancelled, ExportError
from exports.pipeline.options import ExportOptions, engine_values
from exports.pipeline.progress import CancelToken, ProgressSnapshot
from exports.pipeline.run import export_vm
from hypersdk.lib.events import emit
from hypersdk.lib.log_context import job_context
from hypersdk.lib.private_files import make_private_dir

logger = logging.getLogger(__name__)
_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobSession:
    """The ProgressReporter of a running job, and its heartbeat and cancel watcher."""

    def __init__(self, job: Job, cancel: CancelToken, *, progress_interval: float = 0.5) -> None:
        # The claimed job: progress events describe it with its latest progress, no re-read.
        self.job = job
        self.job_id = job.id
        self.cancel = cancel
        self.progress_interval = progress_interval
        self._logs: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        # The latest snapshot of each phase since the last write, in order: a phase that ends
        # within one interval is still written and published, so watchers see every phase.
        self._pending: list[ProgressSnapshot] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-session-{job.id}", daemon=True)

    # ProgressReporter: called from the export's threads, never touches the database itself.
    def progress(self, snapshot: ProgressSnapshot) -> None:
        with self._lock:
            if self._pending and self._pending[-1].phase == snapshot.phase:
                self._pending[-1] = snapshot
            else:
                self._pending.append(snapshot)

    def log(self, level: int, message: str) -> None:
        logger.log(level, message)  # the worker's own log too, stamped with the job id
        if level >= logging.INFO:
            self._logs.put((_LEVELS.get(level, "info"), message))

    def __enter__(self) -> JobSession:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last_progress = last_beat = last_poll = 0.0
        try:
            while True:
                stopping = self._stop.wait(0.1)
                now = time.monotonic()
                # A new phase is written at once and before the log lines that follow it, so the
                # job's label never trails its log ("verifying: ... matches" under "converting").
                if stopping or self._phase_changed() or now - last_progress >= self.progress_interval:
                    self._flush_progress()
                    last_progress = now
                self._flush_logs()
                if now - last_poll >= 1.0:
                    last_poll = now
                    if Job.objects.filter(id=self.job_id, cancel_requested=True).exists():
                        self.cancel.cancel()
                if now - last_beat >= settings.HYPERSDK_HEARTBEAT_SECONDS:
                    last_beat = now
                    Job.objects.filter(id=self.job_id, status=Job.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                if stopping:
                    return
        except Exception:  # noqa: BLE001 - the export goes on; the reaper notices a silent job
            logger.exception("job session of %s failed", self.job_id)
        finally:
            connection.close()

    def _flush_logs(self) -> None:
        entries = []
        while True:
            try:
                level, message = self._logs.get_nowait()
            except queue.Empty:
                break
            entries.append(JobLog(job_id=self.job_id, level=level, message=message))
        for entry in JobLog.objects.bulk_create(entries):
            live.publish_job(
                self.job_id,
                "job.log",
                {"id": entry.id, "at": entry.at.isoformat(), "level": entry.level, "message": entry.message},
            )

    def _phase_changed(self) -> bool:
        with self._lock:
            return any(snapshot.phase != self.job.phase for snapshot in self._pending)

    def _flush_progress(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for snapshot in pending:
            if not self._write_progress(snapshot):
                return

    def _write_progress(self, snapshot: ProgressSnapshot) -> bool:
        """Write and publish one snapshot; False once the job is no longer running."""
        progress = {**asdict(snapshot), "current_file": snapshot.current_file[:512]}
        running = Job.objects.filter(id=self.job_id, status=Job.Status.RUNNING).update(**progress)
        if not running:
            # The job ended meanwhile: a progress now would contradict its end (state running
            # after job.completed). Webhooks also drop one that is still queued when it ends.
            return False
        for name, value in progress.items():
            setattr(self.job, name, value)
        event = self.job.as_event()
        live.publish_job(self.job_id, "job.progress", event["progress"])
        emit("job.progress", event)  # webhooks throttle it
        return True


def export_options(job: Job) -> ExportOptions:
    """The engine options of a claimed job, validated again as at submit.

    Raises JobOptionsInvalid or ConverterNotAllowed (each one line) for a row that predates a
    rule or was edited in the database.
    """
    options = revalidate_job_options(job.vm_path, job.output_path, job.options)
    return ExportOptions(
        vm_path=job.vm_path,
        output_dir=Path(job.output_path),
        **{
            **engine_values(options),
            # Checked again here: the row may predate the rule or have been edited in the database,
            # and the file or a directory above it may have become writable by others since start.
            "hyper2kvm_path": worker_converter(options["hyper2kvm_path"], convert=options["convert"]),
        },
        run_id=job.id,  # the reaper undoes a dead worker's run by this id
    )


def _ca_file(vcenter: VCenter) -> Path:
    """The vCenter's CA bundle as a file TLS can load, named by its content.

    Many jobs (threads and processes, maybe on several machines sharing the data dir) start at
    once: rewriting one file in place let a job read it empty. A content-named file is written
    once, through a unique temporary name and a rename, and never changes after.
    """
    data = vcenter.ca_bundle.encode()
    ca_dir = Path(settings.DATA_DIR) / "ca"
    ca_path = ca_dir / f"{vcenter.name}-{hashlib.sha256(data).hexdigest()[:16]}.pem"
    if not ca_path.exists():
        make_private_dir(ca_dir)  # 0700; the file below is mkstemp's 0600
        with tempfile.NamedTemporaryFile(dir=ca_dir, prefix=".ca-", delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, ca_path)
    return ca_path


def vcenter_target(vcenter: VCenter | None) -> VCenterTarget:
    """The job's vCenter, or the daemon's default from its GOVC_* environment."""
    if vcenter is None:
        return VCenterTarget.from_env()
    ca_file = str(_ca_file(vcenter)) if vcenter.ca_bundle.strip() else None
    return VCenterTarget.from_env(
        {},
        url=vcenter.url,
        username=vcenter.username,
        password=vcenter.password,
        insecure=vcenter.insecure,
        ca_file=ca_file,
        tls_advice=(
            f"paste its CA certificate into the CA bundle of vCenter {vcenter.name!r} in the admin, "
            "or tick its insecure box to skip verification"
        ),
    )


def run_job(job_id: str) -> str | None:
    """Run a job if this worker can claim it; returns its final status (None: not claimed)."""
    with job_context(job_id):
        return _run_job(job_id)


def _run_job(job_id: str) -> str | None:
    close_old_connections()
    job = job_queue.claim_job(job_id, worker_name())
    if job is None:
        return None
    try:
        # Checked and stored resolved at submit; a directory swapped for a symlink since then
        # must not carry the export out of the roots.
        resolve_output_path(job.output_path)
    except OutputOutsideRoots as exc:
        job_queue.finish_job(job.id, Job.Status.FAILED, error=f"output path refused: {exc}")
        job_queue.dispatch_pending()
        return Job.Status.FAILED
    try:
        options = export_options(job)
    except JobOptionsInvalid as exc:
        job_queue.finish_job(job.id, Job.Status.FAILED, error=str(exc))
        job_queue.dispatch_pending()
        return Job.Status.FAILED
    except ConverterNotAllowed as exc:
        job_queue.finish_job(job.id, Job.Status.FAILED, error=f"hyper2kvm_path refused: {exc}")
        job_queue.dispatch_pending()
        return Job.Status.FAILED
    cancel = CancelToken()
    status, result, error = Job.Status.FAILED, None, ""
    with JobSession(job, cancel) as session:
        try:
            outcome = export_vm(options, vcenter_target(job.vcenter), session, cancel)
            status, result = Job.Status.COMPLETED, outcome.as_dict()
        except ExportCancelled:
            status, error = Job.Status.CANCELLED, "cancelled by request"
        except ExportError as exc:
            error = exc.worded_for(job.origin)  # in the words of the surface the job came from
        except Exception as exc:  # noqa: BLE001 - a bug must fail the job, not leave it running
            logger.error("job %s crashed:\n%s", job.id, traceback.format_exc())
            error = f"internal error: {exc.__class__.__name__}: {exc}"
    job_queue.finish_job(job.id, status, result=result, error=error)
    job_queue.dispatch_pending()
    return status
