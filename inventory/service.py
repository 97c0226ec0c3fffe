"""The inventory service: what the API, CLI (local mode), dashboard and preflight call.

CONTRACT (bodies filled in by the collection work; signatures are fixed):

- A vCenter is named by its ``VCenter.name`` slug; ``None`` or ``""`` is the daemon's default
  (its GOVC_* environment, ``exports.job_runner.vcenter_target(None)``).
- Errors are the domain's (``hypersdk.lib.errors``): an unknown vCenter name or VM is
  NotFound; a bad filter (power_state not in records.POWER_STATES, page < 1) InvalidInput;
  vCenter unreachable/login failed: ``exports.pipeline.errors.VCenterConnectionError`` (one line).
- The inventory of a vCenter is read in one PropertyCollector retrieval over a ContainerView
  and kept for ``settings.HYPERSDK_INVENTORY_CACHE_SECONDS``; ``refresh=True`` reads it again.
"""

from __future__ import annotations

from inventory.records import VMPage, VMRecord

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def list_vms(
    *,
    vcenter: str | None = None,
    q: str = "",
    folder: str = "",
    power_state: str = "",
    guest_os: str = "",
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    refresh: bool = False,
) -> VMPage:
    """One page of the VMs matching every filter given, ordered by path.

    ``q``: case-insensitive substring of the name or path; ``folder``: an inventory folder path
    (the VM is in it or below it); ``power_state``: on/off/suspended; ``guest_os``:
    case-insensitive substring of guest_id, guest_full_name or guest_detected.
    """
    raise NotImplementedError


def get_vm(ref: str, *, vcenter: str | None = None, refresh: bool = False) -> VMRecord:
    """One VM by inventory path (``/dc/vm/prod/web01``, leading ``/`` optional) or moref (``vm-42``)."""
    raise NotImplementedError


def refresh(vcenter: str | None = None) -> VMPage:
    """Read the vCenter's inventory again now; the first page of the fresh list."""
    raise NotImplementedError
