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

import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings

from exports.pipeline.connect import INTERACTIVE_CALL_TIMEOUT, VCenterTarget, vsphere_session
from exports.pipeline.errors import VCenterConnectionError
from hypersdk.lib.errors import InvalidInput, NotFoundError
from hypersdk.lib.lookup_text import can_match, shown
from inventory import cache
from inventory.collect import VMEntry, index_vms, read_vm, read_vms
from inventory.paths import normalize_path, visible
from inventory.records import POWER_STATES, VMPage, VMRecord

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Seconds each SOAP call of an inventory read (someone is waiting: the API, the CLI, a page)
# may wait on vCenter's answer, rather than the export's SOAP_CALL_TIMEOUT: a vCenter that
# stops answering is a 502 line within this. The remote CLI waits longer for these calls
# (cli.backends.remote.INVENTORY_TIMEOUT_SECONDS), so the daemon's line arrives first.
CALL_TIMEOUT = INTERACTIVE_CALL_TIMEOUT  # tests lower it

# What XML 1.0 cannot carry (C0 controls but tab and line breaks, U+FFFE, U+FFFF, lone
# surrogates): vCenter's SOAP cannot hold it in a name.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# vCenter's managed object ids of VMs: vm-42 (vcsim and vCenter alike).
# vCenter names VMs vm-<n>, a host without vCenter (ESXi) <n>: ASCII digits only (\d takes ٣).
_MOREF = re.compile(r"(?:vm-)?[0-9]{1,18}")
T = TypeVar("T")

# Refreshes coalesce: one read of a vCenter's list at a time per process (the others wait for
# it), and a refresh asked within REFRESH_SHARED_SECONDS of a read takes that read as its own,
# so viewers pressing Refresh together (or a page polled with ?refresh=1) cost one
# PropertyCollector retrieval, not one each.
REFRESH_SHARED_SECONDS = 5.0
_read_locks: dict[str, threading.Lock] = {}
_read_locks_guard = threading.Lock()
# vCenter identity → (time.monotonic() it ended, why) of its last list read that failed.
_failures: dict[str, tuple[float, VCenterConnectionError]] = {}


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
    power_state = (power_state or "").strip().lower()
    if power_state and power_state not in POWER_STATES:
        raise InvalidInput("power_state", f"must be one of {', '.join(POWER_STATES)}, got {power_state!r}")
    if page < 1:
        raise InvalidInput("page", f"must be 1 or more, got {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput("page_size", f"must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    name, target = _target(vcenter)
    key = cache.identity(name, target)
    start = (page - 1) * page_size

    def page_of(inventory: cache.Inventory) -> tuple[list[VMEntry], list[VMEntry], list[str]]:
        matching = _filtered(inventory, q=q, folder=folder, power_state=power_state, guest_os=guest_os)
        shown = matching[start : start + page_size]
        return matching, shown, [entry.moref for entry in shown if entry.moref not in inventory.records]

    def read(si: Any) -> tuple[cache.Inventory, list[VMEntry], list[VMEntry]]:
        # The list and its page's records in one session: a cold page logs in once.
        entries, structure = index_vms(si)
        inventory = cache.Inventory(vcenter=name, entries=entries, structure=structure)
        matching, shown, missing = page_of(inventory)
        records, gone = _read_existing(si, missing)
        inventory.records.update((record.moref, record) for record in records)
        for moref in gone:
            inventory.drop(moref)
        return inventory, matching, shown

    ttl, asked_at = settings.HYPERSDK_INVENTORY_CACHE_SECONDS, time.monotonic()
    inventory = None if refresh else cache.get(key, ttl)
    read_now = None
    if inventory is None:
        with _reading(key):
            failed = _failures.get(key)
            if failed is not None and failed[0] >= asked_at:
                # The read this request waited for failed: that is its answer too. Reading
                # again in turn would make the Nth waiter wait N times the vCenter's timeout.
                raise VCenterConnectionError(str(failed[1]))
            inventory = _shared_read(key, ttl, refresh=refresh, asked_at=asked_at)
            if inventory is None:
                try:
                    read_now = _with_vcenter(target, read)
                except VCenterConnectionError as exc:
                    _failures[key] = (time.monotonic(), exc)
                    raise
                _failures.pop(key, None)
                inventory = read_now[0]
                cache.put(key, inventory, ttl)
    if read_now is not None:
        matching, shown = read_now[1], read_now[2]
    else:
        matching, shown, missing = page_of(inventory)
        if missing:
            records, gone = _with_vcenter(target, lambda si: _read_existing(si, missing))
            inventory.records.update((record.moref, record) for record in records)
            for moref in gone:
                inventory.drop(moref)  # destroyed since the list was read: no later page shows it
    return VMPage(
        vcenter=name,
        count=len(matching),
        page=page,
        page_size=page_size,
        cached_at=inventory.cached_at,
        # A VM deleted since the list was read has no record: the page shows the others.
        results=[inventory.records[e.moref] for e in shown if e.moref in inventory.records],
    )


def get_vm(ref: str, *, vcenter: str | None = None, refresh: bool = False) -> VMRecord:
    """One VM by inventory path (``/dc/vm/prod/web01``, leading ``/`` optional) or moref (``vm-42``)."""
    ref = ref or ""  # as given: a name may begin or end with a space ("web01 " is not web01)
    if not ref.strip().strip("/"):
        raise InvalidInput("vm", "give an inventory path such as /dc/vm/prod/web01, or a moref such as vm-42")
    if _NOT_IN_XML.search(ref):  # no VM's name holds one; vCenter would fail the request
        raise NotFoundError(f"VM not found: {_named(ref)}")
    if not _MOREF.fullmatch(ref) and len([p for p in ref.split("/") if p]) < 3:
        # A VM's path is at least <datacenter>/vm/<name>: nothing shorter names one, so
        # vCenter need not be asked (nor be reachable) to say so.
        raise NotFoundError(f"VM not found: {_named(ref)} (give an inventory path such as /dc/vm/prod/web01)")
    name, target = _target(vcenter)
    inventory = cache.get(cache.identity(name, target), settings.HYPERSDK_INVENTORY_CACHE_SECONDS)
    entry = inventory.find(ref) if inventory is not None else None
    if entry is not None and not refresh and entry.moref in inventory.records:
        return inventory.records[entry.moref]
    by_moref = ref if _MOREF.fullmatch(ref) else None
    if refresh:
        # A path is resolved afresh in vCenter: after renames the cached path names another VM.
        # The VM the cache put at that path is read too, so the list learns where it went.
        moref, cached = by_moref, entry.moref if entry is not None and entry.moref != by_moref else None
    else:
        moref, cached = (entry.moref if entry is not None else by_moref), None
    record, others, gone = _with_vcenter(target, lambda si: _read_fresh(si, ref, moref, cached))
    if record is None and moref is None and inventory is None:
        # A path with a '/' of a name left unescaped (``/dc/vm/backup/daily``) is no inventory
        # path vCenter knows: the list names it, once read.
        inventory = _inventory(name, target, refresh=False)
        entry = inventory.find(ref)
        if entry is not None:
            record = _with_vcenter(target, lambda si: _read_one(si, ref, entry.moref))
    if inventory is not None:
        for other in others:
            inventory.replace(other)
        for moref_gone in gone:
            inventory.drop(moref_gone)  # destroyed: no list or search may show it again
    if record is None:
        where = f" in vCenter {name}" if name else ""
        raise NotFoundError(f"VM not found: {_named(ref)}{where}")  # one line, whatever the path holds
    if inventory is not None:
        inventory.replace(record)  # the list's entry too: its filters and rows must agree
    return record


def refresh(vcenter: str | None = None) -> VMPage:
    """Read the vCenter's inventory again now; the first page of the fresh list."""
    return list_vms(vcenter=vcenter, refresh=True)


def _named(ref: str) -> str:
    """A ref as a not-found message names it, the pipeline's way (``VM not found: /dc/vm/x``): a
    path with its leading '/' (the API's URL ``/vms/dc/vm/x`` drops it), escaped, cut short."""
    as_given = _MOREF.fullmatch(ref) or ref.startswith("/") or ref[:1].isspace()  # " /dc/..." stays
    return visible(shown(ref if as_given else "/" + ref))


def _target(vcenter: str | None) -> tuple[str, VCenterTarget]:
    """The vCenter's name ("" for the daemon's default) and where to reach it."""
    from exports.job_runner import vcenter_target
    from exports.models import VCenter

    name = (vcenter or "").strip()
    if not name:
        return "", vcenter_target(None)
    # A name no row can hold (a NUL, which PostgreSQL refuses in a query) is unknown too.
    found = (
        VCenter.objects.filter(name=name).first()
        if can_match(name, VCenter._meta.get_field("name").max_length)
        else None
    )
    if found is None:
        raise NotFoundError(f"no vCenter named {shown(name)!r}")
    return name, vcenter_target(found)


def _inventory(name: str, target: VCenterTarget, *, refresh: bool) -> cache.Inventory:
    """The vCenter's list: the cached one while fresh (unless ``refresh``), else read now."""
    key = cache.identity(name, target)
    ttl, asked_at = settings.HYPERSDK_INVENTORY_CACHE_SECONDS, time.monotonic()
    inventory = None if refresh else cache.get(key, ttl)
    if inventory is None:
        with _reading(key):
            inventory = _shared_read(key, ttl, refresh=refresh, asked_at=asked_at)
            if inventory is None:
                entries, structure = _with_vcenter(target, index_vms)
                inventory = cache.Inventory(vcenter=name, entries=entries, structure=structure)
                cache.put(key, inventory, ttl)
    return inventory


def _reading(key: str) -> threading.Lock:
    """The lock held while the list of the vCenter ``key`` names is read (one per identity)."""
    with _read_locks_guard:
        return _read_locks.setdefault(key, threading.Lock())


def _shared_read(key: str, ttl: float, *, refresh: bool, asked_at: float) -> cache.Inventory | None:
    """Under ``_reading(key)``: the cached list if it will do, else None (read it now). Without
    ``refresh`` any fresh one; for a refresh asked at ``asked_at`` (time.monotonic()), one read
    since (while this request waited for the lock) or less than REFRESH_SHARED_SECONDS ago."""
    inventory = cache.get(key, ttl)
    if inventory is None or not refresh:
        return inventory
    if inventory.read_at >= asked_at or inventory.fresh(min(ttl, REFRESH_SHARED_SECONDS)):
        return inventory
    return None


def _filtered(
    inventory: cache.Inventory, *, q: str, folder: str, power_state: str, guest_os: str
) -> list[VMEntry]:
    q, guest_os = q.strip().lower(), guest_os.strip().lower()
    under = normalize_path(folder) if folder.strip().strip("/") else ""
    return [
        entry
        for entry in inventory.entries
        if (not power_state or entry.power_state == power_state)
        and (not under or entry.folder == under or entry.folder.startswith(under + "/"))
        and (not q or q in inventory.search_text[entry.moref])
        and (not guest_os or guest_os in inventory.guest_text[entry.moref])
    ]


def _vms(si: Any, morefs: list[str]) -> list[Any]:
    from pyVmomi import vim

    return [vim.VirtualMachine(moref, si._stub) for moref in morefs]


def _read_existing(si: Any, morefs: list[str]) -> tuple[list[VMRecord], set[str]]:
    """The records of the VMs ``morefs`` names that still exist, and the morefs of those gone.
    vCenter refuses a whole retrieval naming a destroyed VM (ManagedObjectNotFound, naming
    it): that one is left out and the rest read again, one more call per destroyed VM."""
    from pyVmomi import vmodl

    left, gone = list(morefs), set()
    while left:
        try:
            return read_vms(si, _vms(si, left)), gone
        except vmodl.fault.ManagedObjectNotFound as exc:
            moref = getattr(getattr(exc, "obj", None), "_moId", None)
            if moref not in left:
                raise
            left.remove(moref)
            gone.add(moref)
    return [], gone


def _read_fresh(
    si: Any, ref: str, moref: str | None, cached: str | None
) -> tuple[VMRecord | None, list[VMRecord], set[str]]:
    """The VM ``ref`` names (by ``moref``, else its path looked up in vCenter), the VM the cache
    held at that path (``cached``) read again, and the morefs vCenter no longer has.

    The cached VM is the answer when its fresh path is still ``ref`` (a name holding a '/'
    written unescaped, which FindByInventoryPath cannot find)."""
    record = _read_one(si, ref, moref)
    gone = {moref} if record is None and moref is not None else set()
    others: list[VMRecord] = []
    if cached is not None and (record is None or record.moref != cached):
        other = _read_one(si, ref, cached)
        if other is None:
            gone.add(cached)
        elif record is None and cache.plain_path(other.path) == cache.plain_path(ref):
            record = other
        else:
            others.append(other)
    return record, others, gone


def _read_one(si: Any, ref: str, moref: str | None) -> VMRecord | None:
    from pyVmomi import vim, vmodl

    if moref is not None:
        vm = vim.VirtualMachine(moref, si._stub)
    else:
        vm = si.RetrieveContent().searchIndex.FindByInventoryPath(normalize_path(ref).lstrip("/"))
        if not isinstance(vm, vim.VirtualMachine):
            return None
    try:
        return read_vm(si, vm)
    except vmodl.fault.ManagedObjectNotFound:
        return None


@contextmanager
def interactive_session(target: VCenterTarget) -> Iterator[Any]:
    """``vsphere_session`` for a reader who is waiting (API, CLI, dashboard, preflight): each
    SOAP call waits at most CALL_TIMEOUT; a vCenter silent that long is one
    VCenterConnectionError line, and the session is not logged out (that would wait as long)."""
    deadline = settings.HYPERSDK_INVENTORY_READ_SECONDS  # the whole read, log-in included
    with vsphere_session(target, call_timeout=CALL_TIMEOUT, deadline=deadline) as si:
        try:
            yield si
        except TimeoutError:
            si._stub.GetConnection = _no_more_calls
            raise VCenterConnectionError(
                f"vCenter {target.netloc} did not answer within {CALL_TIMEOUT:g} s"
            ) from None


def _with_vcenter(target: VCenterTarget, read: Callable[[Any], T]) -> T:
    """``read(service_instance)`` in a session of ``target``; any failure of vCenter's is one
    VCenterConnectionError line naming the vCenter (never its password)."""
    from pyVmomi import vmodl

    try:
        with interactive_session(target) as si:
            return read(si)
    except VCenterConnectionError:
        raise
    except vmodl.MethodFault as exc:
        reason = (getattr(exc, "msg", "") or type(exc).__name__).splitlines()[0]
        raise VCenterConnectionError(f"reading the inventory of {target.netloc} failed: {reason}") from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts and TLS errors are OSErrors
        reason = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).splitlines()[0]
        raise VCenterConnectionError(f"lost the connection to vCenter {target.netloc}: {reason}") from None


def _no_more_calls() -> Any:
    """A session's connection source once its vCenter stopped answering: no call is sent."""
    raise TimeoutError("vCenter stopped answering")
