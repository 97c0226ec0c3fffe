"""The ExportVm lease: wait until ready, keep it alive, complete or abort it.

vSphere drops a lease that hears nothing for ``leaseTimeout`` seconds, so a keepalive
thread reports progress at no more than a quarter of that interval for as long as the
downloads run. Any failure or cancel aborts the lease so the host frees its resources.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pyVmomi import vim, vmodl

from exports.pipeline.devices import DiskDevice, disk_devices, match_disk
from exports.pipeline.errors import LeaseError, VMPoweredOn
from exports.pipeline.progress import CancelToken, ProgressReporter

# What pyvmomi raises when vCenter is gone (refused, reset, timed out) rather than a SOAP fault.
CONNECTION_ERRORS = (OSError, http.client.HTTPException)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__


def _unreachable(vm_path: str, exc: BaseException) -> LeaseError:
    return LeaseError(
        f"vCenter unreachable while opening the export lease of {vm_path}: {_reason(exc)}", retryable=True
    )


@dataclass(frozen=True)
class DiskSource:
    """One file as the lease offers it for download: a disk (``device`` set) or the NVRAM."""

    key: str
    url: str
    target_id: str
    ssl_thumbprint: str
    file_size: int | None
    capacity_bytes: int
    device: DiskDevice | None = None


def is_nvram(device_url: object) -> bool:
    """vSphere 6.7+ lists the VM's ``.nvram`` as a non-disk device URL (key ``/<vm>/nvram``)."""
    key = (getattr(device_url, "key", "") or "").rsplit("/", 1)[-1].lower()
    target = (getattr(device_url, "targetId", "") or "").lower()
    url = urlsplit(getattr(device_url, "url", "") or "").path.lower()
    return key == "nvram" or target.endswith(".nvram") or url.endswith(".nvram")


def _resolve_host(url: str, vcenter_netloc: str) -> str:
    """Lease URLs name the host ``*`` when it is the one we connected to."""
    parts = urlsplit(url)
    if parts.hostname == "*":
        netloc = parts.netloc.replace("*", vcenter_netloc.split(":")[0], 1)
        if ":" not in netloc and ":" in vcenter_netloc:
            netloc = vcenter_netloc
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class ExportLease:
    """An HttpNfcLease from ``VirtualMachine.ExportVm`` and its keepalive thread."""

    def __init__(self, lease: vim.HttpNfcLease, reporter: ProgressReporter) -> None:
        self._lease = lease
        self._reporter = reporter
        self._stop = threading.Event()
        self._keepalive: threading.Thread | None = None
        self.timeout_seconds = 300
        self.keepalive_error: str | None = None
        self.finished = False

    @classmethod
    def open(
        cls,
        vm: vim.VirtualMachine,
        vm_path: str,
        reporter: ProgressReporter,
        cancel: CancelToken,
        *,
        ready_timeout: float = 120.0,
    ) -> ExportLease:
        try:
            lease = vm.ExportVm()
        except vim.fault.InvalidPowerState:
            raise VMPoweredOn(f"VM {vm_path} is powered on: it must be off to export") from None
        except vmodl.fault.ManagedObjectNotFound:
            raise LeaseError(f"VM {vm_path} disappeared before the export started") from None
        except vim.fault.VimFault as exc:
            raise LeaseError(f"vCenter refused the export of {vm_path}: {exc.msg}") from None
        except CONNECTION_ERRORS as exc:
            raise _unreachable(vm_path, exc) from None
        export_lease = cls(lease, reporter)
        try:
            export_lease._wait_ready(ready_timeout, cancel)
        except CONNECTION_ERRORS as exc:
            export_lease.abort()
            raise _unreachable(vm_path, exc) from None
        except BaseException:
            export_lease.abort()
            raise
        return export_lease

    def _wait_ready(self, timeout: float, cancel: CancelToken) -> None:
        deadline = time.monotonic() + timeout
        poll = 0.05  # leases are often ready at once; back off for slow hosts
        while True:
            state = self._lease.state
            if state == vim.HttpNfcLease.State.ready:
                self.timeout_seconds = self._lease.info.leaseTimeout or 300
                return
            if state == vim.HttpNfcLease.State.error:
                error = self._lease.error
                raise LeaseError(f"export lease failed: {error.msg if error else 'unknown error'}")
            if time.monotonic() > deadline:
                raise LeaseError(f"export lease not ready after {timeout:.0f}s")
            if cancel.wait(poll):
                cancel.raise_if_cancelled()
            poll = min(poll * 2, 1.0)

    def _info(self) -> tuple[object, object]:
        try:
            info = self._lease.info
            config = info.entity.config
        except CONNECTION_ERRORS as exc:
            raise LeaseError(f"vCenter unreachable while reading the export lease: {_reason(exc)}") from None
        return info, config

    def disks(self, vcenter_netloc: str) -> list[DiskSource]:
        """The disk URLs of the lease, each tied to its own VirtualDisk by its key (see devices)."""
        info, config = self._info()
        devices = disk_devices(config)
        sources = []
        for device_url in info.deviceUrl:
            if not device_url.disk:
                continue
            device = match_disk(device_url.key, devices)
            sources.append(
                DiskSource(
                    key=device_url.key,
                    url=_resolve_host(device_url.url, vcenter_netloc),
                    target_id=device_url.targetId or "",
                    ssl_thumbprint=device_url.sslThumbprint or "",
                    file_size=getattr(device_url, "fileSize", None) or None,
                    capacity_bytes=device.capacity_bytes,
                    device=device,
                )
            )
        if not sources:
            raise LeaseError("the export lease offers no disks")
        if len({source.device.device_key for source in sources}) != len(sources):
            raise LeaseError("the export lease names one disk twice")
        return sources

    def nvram(self, vcenter_netloc: str) -> DiskSource | None:
        """The VM's NVRAM file (EFI variables, secure boot keys) when the lease offers it."""
        info, _ = self._info()
        for device_url in info.deviceUrl:
            if device_url.disk or not is_nvram(device_url):
                continue
            return DiskSource(
                key=device_url.key,
                url=_resolve_host(device_url.url, vcenter_netloc),
                target_id=device_url.targetId or "",
                ssl_thumbprint=device_url.sslThumbprint or "",
                file_size=getattr(device_url, "fileSize", None) or None,
                capacity_bytes=0,
            )
        return None

    def start_keepalive(self, percent: Callable[[], float]) -> None:
        """Report progress every quarter of the lease timeout (at most) until stopped."""
        interval = max(0.2, min(self.timeout_seconds / 4.0, 30.0))

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self._lease.HttpNfcLeaseProgress(percent=int(max(0, min(100, percent()))))
                except Exception as exc:  # noqa: BLE001 - record it; the downloads will fail anyway
                    self.keepalive_error = getattr(exc, "msg", None) or str(exc)
                    self._reporter.log(logging.WARNING, f"lease keepalive failed: {self.keepalive_error}")
                    return

        self._keepalive = threading.Thread(target=run, name="lease-keepalive", daemon=True)
        self._keepalive.start()

    def _stop_keepalive(self) -> None:
        self._stop.set()
        if self._keepalive is not None:
            self._keepalive.join(timeout=10)

    def complete(self) -> None:
        self._stop_keepalive()
        try:
            self._lease.HttpNfcLeaseProgress(percent=100)
            self._lease.HttpNfcLeaseComplete()
        except CONNECTION_ERRORS as exc:
            raise LeaseError(
                f"vCenter unreachable while completing the export lease: {_reason(exc)}"
            ) from None
        self.finished = True

    def abort(self) -> None:
        """Abort, best effort: the lease may already be gone (timed out, vCenter restarted)."""
        self._stop_keepalive()
        if self.finished:
            return
        self.finished = True
        try:
            self._lease.HttpNfcLeaseAbort()
        except Exception as exc:  # noqa: BLE001
            self._reporter.log(logging.DEBUG, f"lease abort: {getattr(exc, 'msg', exc)}")
