"""The per-vCenter inventory kept between requests: process-local, for
``settings.HYPERSDK_INVENTORY_CACHE_SECONDS``.

Process-local because what it holds is cheap to read again and costly to move: the VM list
(thousands of entries) is filtered on every request, and a page's full records are read from
vCenter the first time the page is shown, then kept beside it. A shared cache (Redis) would
(de)serialise the whole list on each request and still need the records read by one process.
Each daemon process reads a vCenter at most once per period (and on an explicit refresh).

The key is the vCenter's identity (``identity``): its name, URL, user, TLS settings and a digest
of its password, so editing a vCenter in the admin makes the next list read it afresh.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exports.pipeline.connect import VCenterTarget
from inventory.collect import Structure, VMEntry
from inventory.paths import normalize_path, split_path, unescape_name
from inventory.records import VMRecord


def identity(name: str, target: VCenterTarget) -> str:
    """A digest naming this vCenter as configured now (never holding the password itself)."""
    parts = [name, target.host, str(target.port), target.username, target.password]
    parts += [str(target.insecure), target.ca_file or ""]
    if target.ca_file:
        try:
            with open(target.ca_file, "rb") as ca:
                parts.append(hashlib.sha256(ca.read()).hexdigest())
        except OSError:
            pass
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass
class Inventory:
    """One vCenter's VM list as read at ``cached_at``, and the full records read since."""

    vcenter: str
    entries: list[VMEntry]
    structure: Structure
    read_at: float = field(default_factory=time.monotonic)
    cached_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    records: dict[str, VMRecord] = field(default_factory=dict)
    _by_moref: dict[str, VMEntry] = field(default_factory=dict)
    _by_path: dict[str, VMEntry] = field(default_factory=dict)
    _by_plain_path: dict[str, VMEntry] = field(default_factory=dict)
    # Lower-cased text each filter searches, made once per read rather than per request.
    search_text: dict[str, str] = field(default_factory=dict)
    guest_text: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index()

    def _index(self) -> None:
        # New maps, assigned whole: a request filtering the list meanwhile reads old or new ones.
        by_moref, by_path, by_plain_path, search_text, guest_text = {}, {}, {}, {}, {}
        for entry in self.entries:
            plain = plain_path(entry.path)
            by_moref[entry.moref] = entry
            by_path[entry.path] = entry
            by_plain_path.setdefault(plain, entry)
            search_text[entry.moref] = f"{entry.name}\n{entry.path}\n{plain}".lower()
            guest_text[entry.moref] = (
                f"{entry.guest_id}\n{entry.guest_full_name}\n{entry.guest_detected}".lower()
            )
        self._by_moref, self._by_path, self._by_plain_path = by_moref, by_path, by_plain_path
        self.search_text, self.guest_text = search_text, guest_text

    def replace(self, record: VMRecord) -> None:
        """Keep ``record``, read again since the list was, and make the list's entry of that VM
        say what it says (name, path, power state, guest): filters and rows then agree. A VM
        the list does not hold is left out (the next list read finds it)."""
        old = self._by_moref.get(record.moref)
        if old is None:
            return
        self.records[record.moref] = record
        new = VMEntry.of(record)
        if new == old:
            return
        entries = [new if entry.moref == record.moref else entry for entry in self.entries]
        self.entries = sorted(entries, key=lambda entry: (entry.path, entry.moref))
        self._index()  # a rename moves the VM in the order and changes what matches it

    def drop(self, moref: str) -> None:
        """Forget a VM vCenter no longer has (destroyed): no page or search shows it again."""
        self.records.pop(moref, None)
        if moref in self._by_moref:
            self.entries = [entry for entry in self.entries if entry.moref != moref]
            self._index()

    def fresh(self, ttl: float) -> bool:
        return time.monotonic() - self.read_at < ttl

    def find(self, ref: str) -> VMEntry | None:
        """The VM a moref or a path names: escaped as vCenter escapes names, or not."""
        found = self._by_moref.get(ref)  # as given, like a path
        if found is None:
            found = self._by_path.get(normalize_path(ref))
        if found is None:
            found = self._by_plain_path.get(plain_path(ref))
        return found


def plain_path(path: str) -> str:
    """A path as a person reads it: ``/dc/vm/a%2fb`` → ``/dc/vm/a/b`` (for matching only)."""
    return "/" + "/".join(unescape_name(part) for part in split_path(path))


_inventories: dict[str, Inventory] = {}
_lock = threading.Lock()


def get(key: str, ttl: float) -> Inventory | None:
    with _lock:
        inventory = _inventories.get(key)
    return inventory if inventory is not None and inventory.fresh(ttl) else None


def put(key: str, inventory: Inventory, ttl: float) -> None:
    """Keep ``inventory`` under ``key``; lists past ``ttl`` go (those of a vCenter since edited
    are under a key no request asks for again)."""
    with _lock:
        for stale in [k for k, kept in _inventories.items() if not kept.fresh(ttl)]:
            del _inventories[stale]
        if ttl > 0:
            _inventories[key] = inventory


def clear() -> None:
    with _lock:
        _inventories.clear()
