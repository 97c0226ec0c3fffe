"""A libvirt domain name from any VM name.

libvirt itself takes almost any name (not ``/``, not a newline), but the name is what an
operator types after ``virsh start``, what names the guest's log and monitor socket files,
and what ``virsh list`` prints; so it is kept to what a shell takes unquoted. The VM's own
name, in any script, goes in the domain's ``<title>``.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_NAME", "domain_name"]

# Long enough for real names, short enough for the UNIX socket paths libvirt derives from it.
MAX_NAME = 63
_OTHER = re.compile(r"[^A-Za-z0-9_.+-]+")


def domain_name(vm_name: str, uuid: str) -> str:
    """``vm_name`` as a domain name a shell and ``virsh`` take unquoted: letters, digits and
    ``_ . + -`` (accents dropped, any other run of characters one ``-``), at most 63 characters,
    never beginning or ending with punctuation.

    Letters of other scripts cannot be kept: when the name held any, the UUID's first 8 hex
    digits are added (``01-4225b2c8``), so two such VMs do not collide; with nothing left,
    the name is ``vm-`` and those digits (``vm`` alone without a UUID).
    """
    decomposed = unicodedata.normalize("NFKD", vm_name)
    kept = "".join(char for char in decomposed if not unicodedata.combining(char))
    foreign = any(not char.isascii() and char.isalnum() for char in kept)
    name = _OTHER.sub("-", kept).strip("-.+_")
    digits = re.sub(r"[^0-9a-f]", "", uuid.lower())[:8]
    suffix = f"-{digits}" if foreign and digits else ""
    name = name[: MAX_NAME - len(suffix)].rstrip("-.+_")
    if not re.search(r"[A-Za-z0-9]", name):
        return f"vm-{digits}" if digits else "vm"
    return name + suffix
