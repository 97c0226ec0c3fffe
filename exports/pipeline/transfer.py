"""Transfer the VM's files (disks, then the NVRAM if vCenter offers it) under an export
lease, several at once; a failed transfer is retried under a new lease, with backoff, as
vSphere cannot resume one. Writes ``<stem>-disk<N>.vmdk`` and ``<stem>.nvram``.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from exports.pipeline.connect import VCenterTarget, session_cookie
from exports.pipeline.download import DownloadedDisk, download_disk, probe_size
from exports.pipeline.errors import DownloadError, ExportCancelled, ExportError, LeaseError
from exports.pipeline.lease import ExportLease
from exports.pipeline.names import disk_file_name
from exports.pipeline.options import ExportOptions
from exports.pipeline.output import OutputDir
from exports.pipeline.progress import (
    CancelToken,
    ProgressReporter,
    ProgressSnapshot,
    TransferMeter,
)
from exports.pipeline.step import ExportedFile, ExportRun, Step
from hypersdk.lib.units import human_duration, human_size


class Transfer(Step):
    needs_vcenter = True

    def run(self, run: ExportRun) -> None:
        run.files = download_files(
            run.service_instance,
            run.vm,
            run.options,
            run.target,
            run.stem,
            run.output,
            run.reporter,
            run.cancel,
        )
        run.cancel.raise_if_cancelled()
        run.result.files = [ExportedFile(f.path.name, f.size, f.sha256) for f in run.files]
        run.result.total_bytes = sum(f.size for f in run.files)


def download_files(
    service_instance,
    vm,
    options: ExportOptions,
    target: VCenterTarget,
    name: str,
    output: OutputDir,
    reporter: ProgressReporter,
    cancel: CancelToken,
) -> list[DownloadedDisk]:
    """Download every disk; a failed disk is retried under a new lease (vSphere cannot resume)."""
    meter = TransferMeter(reporter)
    cookie = session_cookie(service_instance)
    done: dict[int, DownloadedDisk] = {}
    last_error: ExportError | None = None
    for attempt in range(1, options.max_attempts + 1):
        if attempt > 1:
            delay = options.retry_backoff * 2 ** (attempt - 2)
            reporter.log(
                logging.WARNING,
                f"retrying under a new lease in {delay:.0f}s (attempt {attempt}): {last_error}",
            )
            if cancel.wait(delay):
                raise ExportCancelled()
        reporter.progress(ProgressSnapshot(phase="waiting for export lease", percent=meter.percent()))
        try:
            lease = ExportLease.open(vm, options.vm_path, reporter, cancel)
        except LeaseError as exc:
            if not exc.retryable:
                raise
            last_error = exc  # vCenter went away: counts as an attempt, so retries stay bounded
            continue
        try:
            disk_count, failures = _download_under_lease(
                lease, done, options, target, name, output, meter, cookie, cancel
            )
        except BaseException:
            lease.abort()
            raise
        if not failures:
            lease.complete()
            meter.finish()  # the throttle may have held back the last bytes
            return [done[i] for i in range(disk_count)]
        lease.abort()
        last_error = failures[0]
        if lease.keepalive_error:
            last_error = DownloadError(f"export lease lost: {lease.keepalive_error}")
    raise DownloadError(f"export failed after {options.max_attempts} attempts: {last_error}")


def _download_under_lease(
    lease: ExportLease,
    done: dict[int, DownloadedDisk],
    options: ExportOptions,
    target: VCenterTarget,
    name: str,
    output: OutputDir,
    meter: TransferMeter,
    cookie: str,
    cancel: CancelToken,
) -> tuple[int, list[DownloadError]]:
    """Fetch the files (disks, then the NVRAM if offered) not yet in ``done`` in parallel.

    Returns the number of files and the retryable failures.
    """
    sources = lease.disks(target.netloc)
    dests = [output.track(disk_file_name(name, i + 1)) for i in range(len(sources))]
    nvram = lease.nvram(target.netloc)
    if nvram is not None:
        sources.append(nvram)
        dests.append(output.track(f"{name}.nvram"))
    todo = [i for i in range(len(sources)) if i not in done]
    for i in todo:
        meter.expect(dests[i].name, probe_size(sources[i], target, cookie) or sources[i].capacity_bytes)
    lease.start_keepalive(meter.percent)
    # One failure that a new lease cannot fix stops the sibling downloads at once.
    attempt_cancel = CancelToken()
    unlink = cancel.on_cancel(attempt_cancel.cancel)

    reporter = meter.reporter

    def fetch(i: int) -> DownloadedDisk:
        name = dests[i].name
        reporter.log(
            logging.INFO,
            f"{name}: transfer started: capacity {human_size(sources[i].capacity_bytes)},"
            f" expecting {human_size(meter.expected(name))}",
        )
        started = time.monotonic()
        try:
            disk = download_disk(
                sources[i],
                dests[i],
                target=target,
                cookie=cookie,
                meter=meter,
                cancel=attempt_cancel,
                dir_fd=output.fd,
            )
        except DownloadError as exc:
            if not exc.retryable:
                attempt_cancel.cancel()
            raise
        elapsed = time.monotonic() - started
        reporter.log(
            logging.INFO,
            f"{name}: transferred {human_size(disk.size)} in {human_duration(elapsed)}"
            f" ({human_size(disk.size / max(elapsed, 1e-6))}/s), sha256 {disk.sha256}",
        )
        return disk

    failures: list[DownloadError] = []
    try:
        with ThreadPoolExecutor(max_workers=options.parallel, thread_name_prefix="disk") as pool:
            futures = {i: pool.submit(fetch, i) for i in todo}
            for i, future in futures.items():
                try:
                    done[i] = future.result()
                except ExportCancelled:
                    pass  # a sibling's fatal error or the user's cancel: both surface below
                except DownloadError as exc:
                    failures.append(exc)
                    then = "will retry under a new lease" if exc.retryable else "not retried"
                    reporter.log(logging.WARNING, f"{dests[i].name}: transfer failed ({then}): {exc}")
    finally:
        unlink()
    cancel.raise_if_cancelled()
    fatal = [failure for failure in failures if not failure.retryable]
    if fatal:
        raise fatal[0]
    return len(sources), failures
