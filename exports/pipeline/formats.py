"""The formats an export is packaged in and its disks converted to: each described once.

Conversion (``convert.py``), verification (``verify.py``), the option declarations
(``options.py``: API choices, CLI choices, dashboard radio buttons) all read this table. A new
target format is one ``TargetFormat`` entry here (plus what its converter needs, if anything).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetFormat:
    """A disk format the exported VMDKs may be converted to.

    ``name`` is what users type (``-manifest-target``, the API's ``manifest_target``) and what
    the Artifact Manifest records; ``qemu_format`` is qemu-img's ``-O``/``-f`` name;
    ``extension`` the converted file's (``<disk id>.<extension>``); ``checkable`` says whether
    ``qemu-img check`` can check it (verification does when it can).
    """

    name: str
    label: str
    qemu_format: str
    extension: str
    checkable: bool


# The first is the default; the labels are the dashboard's (the guide's wording).
TARGETS: tuple[TargetFormat, ...] = (
    TargetFormat("qcow2", "QCOW2 (Recommended) — KVM/QEMU native format", "qcow2", "qcow2", checkable=True),
    TargetFormat("raw", "RAW — Universal raw disk image", "raw", "raw", checkable=False),
    TargetFormat("vdi", "VDI — VirtualBox format", "vdi", "vdi", checkable=True),
)
TARGET_FORMATS = tuple(target.name for target in TARGETS)
DEFAULT_TARGET = TARGETS[0].name
# How an export is packaged: a directory (.ovf beside its disks) or one tar (.ova).
PACKAGE_FORMATS = ("ovf", "ova")
# -compress's default gzip level in an OVA: the fastest, as disks are large and stream-optimized
# VMDKs are compressed already (the compression_level option picks another).
OVA_GZIP_LEVEL = 1


def target_format(name: str) -> TargetFormat:
    """The target called ``name``; KeyError for one not in TARGETS (options are validated first)."""
    for target in TARGETS:
        if target.name == name:
            return target
    raise KeyError(name)
