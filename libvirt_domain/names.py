"""A libvirt domain name from any VM name."""

from __future__ import annotations

__all__ = ["domain_name"]


def domain_name(vm_name: str, uuid: str) -> str:
    """``vm_name`` as a domain name a shell and ``virsh`` take unquoted: letters, digits and
    ``_ . + -`` (accents dropped, other characters a ``-``), at most 63 characters; for a
    name with no such letters (another script), ``vm-`` and the UUID's first 8 digits."""
    raise NotImplementedError
