"""File names for what an export writes, made from the VM's name.

vSphere allows 80-character VM names in any script, so a name can take 320 bytes in UTF-8
while Linux file names stop at 255 bytes, and every file the export writes adds a suffix
(``-disk12.vmdk.part``). The VM's own name is kept whenever it fits; a longer one is cut
at a character boundary and given a short digest of the whole name, so the stem is stable
and two long names that share a prefix still differ. vCenter stores ``/`` in a name as
``%2f``, so a name never holds a path separator; ``.`` and ``..`` alone are not file names.
"""

from __future__ import annotations

import hashlib

# Linux's NAME_MAX (255 bytes) less room for the longest suffix an export adds to a file name
# ("-disk999.vmdk.part", ".nvram.part", ".ova.part"...).
MAX_STEM_BYTES = 255 - 24


def file_stem(vm_name: str) -> str:
    """The VM's name as the stem of its export's files: at most MAX_STEM_BYTES UTF-8 bytes."""
    name = vm_name.replace("/", "%2f").replace("\0", "")
    if name in ("", ".", ".."):
        name = f"vm{name}"
    encoded = name.encode()
    if len(encoded) <= MAX_STEM_BYTES:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:8]
    cut = encoded[: MAX_STEM_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{cut}-{digest}"


def disk_file_name(stem: str, number: int) -> str:
    """The name of the export's ``number``-th file from the lease (from 1): ``<stem>-disk<N>.vmdk``."""
    return f"{stem}-disk{number}.vmdk"


def domain_file_name(stem: str) -> str:
    """The libvirt domain of an export whose files are named ``stem`` (``-libvirt``)."""
    return f"{stem}.xml"
