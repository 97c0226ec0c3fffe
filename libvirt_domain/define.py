"""``-define URI``: define the written domain with libvirt (``virsh define``), never start it.

Only URIs the administrator allows may be used (``HYPERSDK_LIBVIRT_DEFINE_URIS``, spaces or
commas between them; default ``qemu:///system qemu:///session``): a libvirt URI can name a
transport that runs a program (``qemu+ext://…?command=``) or reach other hosts over ssh, so a
request never picks one freely. An existing domain of the same name or UUID is never replaced.
"""

from __future__ import annotations

import os
import re

__all__ = [
    "ALLOWED_URIS_VARIABLE",
    "DefineError",
    "allowed_uris",
    "check_uri",
    "define_domain",
    "check_definable",
]

ALLOWED_URIS_VARIABLE = "HYPERSDK_LIBVIRT_DEFINE_URIS"
DEFAULT_ALLOWED_URIS = ("qemu:///system", "qemu:///session")


class DefineError(Exception):
    """virsh is missing, the URI cannot be reached, or the domain cannot be defined (one line)."""


def allowed_uris() -> tuple[str, ...]:
    """The URIs ``-define`` may name, from ``HYPERSDK_LIBVIRT_DEFINE_URIS`` (read each call)."""
    text = os.environ.get(ALLOWED_URIS_VARIABLE)
    if text is None:
        return DEFAULT_ALLOWED_URIS
    return tuple(uri for uri in re.split(r"[\s,]+", text) if uri)


def check_uri(uri: str) -> str:
    """``uri`` if it is allowed (the ``define_uri`` option's ``parse``); ValueError otherwise."""
    allowed = allowed_uris()
    if uri not in allowed:
        listed = ", ".join(allowed) if allowed else "none"
        raise ValueError(
            f"libvirt URI {uri[:100]!r} is not allowed: use one of {listed} ({ALLOWED_URIS_VARIABLE})"
        )
    return uri


def check_definable(uri: str, name: str, uuid: str) -> None:
    """Before the export: virsh is installed, ``uri`` answers, and no domain there has this
    ``name`` or ``uuid``. Raises DefineError."""
    raise NotImplementedError


def define_domain(uri: str, xml_path: str) -> None:
    """``virsh -c <uri> define <xml_path>``; DefineError (virsh's first error line) on failure."""
    raise NotImplementedError
