"""How the inventory reads in a terminal: pure functions of the API's dicts (``GET /vms``,
``GET /vms/{ref}``). VM names are whatever the vCenter's users typed: every cell goes through
``printable`` (control and bidirectional characters escaped), so a name cannot move the cursor,
split a line or reverse the text after it.

The fields shown by ``vm_info_lines`` come from the records' dataclasses (``inventory.records``):
a field added there is shown here without touching this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cli.render import local_time, printable, table
from hypersdk.lib.units import human_size
from inventory.paths import unescape_name
from inventory.records import DiskRecord, DriveRecord, NicRecord, VMRecord

VM_COLUMNS = ("NAME", "PATH", "POWER", "GUEST", "CPUS", "MEMORY", "DISKS", "EST. SIZE")
MIB = 2**20
# vm_info_lines: each device list, under this heading, as a table of the record's fields.
DEVICE_TABLES = (
    ("disks", "disks", DiskRecord),
    ("nics", "NICs", NicRecord),
    ("drives", "drives", DriveRecord),
)


def guest_text(vm: dict[str, Any]) -> str:
    """The configured guest OS by its full name (its id if vCenter gave no name)."""
    return vm.get("guest_full_name") or vm.get("guest_id") or "-"


def vm_table(vms: list[dict[str, Any]]) -> list[str]:
    """Columns NAME, PATH, POWER, GUEST, CPUS, MEMORY, DISKS, EST. SIZE (``VMRecord.summary()`` rows).
    NAME as people wrote it (vCenter's ``a%2fb`` is ``a/b``); PATH as vCenter escapes it."""
    rows = [
        (
            unescape_name(vm["name"]),
            vm["path"],
            vm["power_state"],
            guest_text(vm),
            str(vm["cpus"]),
            human_size(vm["memory_mb"] * MIB),
            str(vm["disk_count"]),
            human_size(vm["estimated_export_bytes"]),
        )
        for vm in vms
    ]
    return table(VM_COLUMNS, rows)


def vm_paths(vms: list[dict[str, Any]]) -> list[str]:
    """For scripts (-quiet): each VM's inventory path, one a line."""
    return [printable(vm["path"]) for vm in vms]


def cached_note(listing: dict[str, Any]) -> str:
    """Where and when the list was read, in local time with its UTC offset:
    ``inventory of vCenter vc1 read at 2026-12-07 15:02:11 +0100: -refresh reads it again``."""
    where = f"vCenter {listing['vcenter']}" if listing.get("vcenter") else "the default vCenter"
    read_at = local_time(listing["cached_at"], "%Y-%m-%d %H:%M:%S %z")
    return f"inventory of {printable(where)} read at {read_at}: -refresh reads it again"


def value_text(name: str, value: Any) -> str:
    """A record's value for people: sizes in KiB/MiB/GiB (``*_bytes``, ``memory_mb``), yes/no,
    ``-`` for nothing."""
    if name == "vcenter" and not value:
        return "the daemon's default (GOVC_*)"
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "name" and isinstance(value, str):
        return unescape_name(value)  # as `vms list` shows it (a%2fb is a/b); the path stays escaped
    if name.endswith("_bytes") and isinstance(value, int):
        return human_size(value)
    if name == "memory_mb" and isinstance(value, int):
        return human_size(value * MIB)
    return str(value)


def _label(name: str) -> str:
    """``memory_mb`` → ``memory``, ``capacity_bytes`` → ``capacity``: the value says its unit."""
    for unit in ("_bytes", "_mb"):
        name = name.removesuffix(unit)
    return name.replace("_", " ")


def vm_info_lines(vm: dict[str, Any]) -> list[str]:
    """Every field of ``GET /vms/{ref}``: ``label: value`` lines, then the disks, NICs and
    drives, each a table of its record's fields (``none`` when the VM has none)."""
    lists = {name for name, _, _ in DEVICE_TABLES}
    names = [f.name for f in dataclasses.fields(VMRecord) if f.name not in lists]
    names += [name for name in vm if name not in names and name not in lists]  # "vcenter", fields added
    width = max(len(_label(name)) for name in names) + 1
    lines = [
        f"{(_label(name) + ':').ljust(width)} {printable(value_text(name, vm.get(name)))}" for name in names
    ]
    for key, heading, record in DEVICE_TABLES:
        devices = vm.get(key) or []
        lines += ["", f"{heading} ({len(devices)}):"]
        if not devices:
            lines.append("  none")
            continue
        columns = [f.name for f in dataclasses.fields(record)]
        rows = [tuple(value_text(column, device.get(column)) for column in columns) for device in devices]
        lines += ["  " + line for line in table(tuple(_label(c).upper() for c in columns), rows)]
    return lines
