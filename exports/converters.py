"""Which converter binaries the daemon may run: the administrator's choice, never a request's.

A job (API, dashboard, schedule, imported config, local hyperctl) may leave ``hyper2kvm_path``
empty (the daemon's own hyper2kvm on its PATH, else qemu-img) or name one of the converters the
server is configured with (``HYPERSDK_HYPER2KVM_PATHS``) or the one it auto-detects. Anything
else is refused at submit and again by the worker, so a row written before this rule or edited
in the database cannot make the daemon run an arbitrary file. ``hyperexport`` without
``--use-daemon`` does not come here: it runs as its user, who may run any binary anyway.
"""

from __future__ import annotations

import os
import shutil

from django.conf import settings


class ConverterNotAllowed(ValueError):
    """``str(exc)`` is a one-line message that lists what is allowed."""


def configured_converters() -> list[str]:
    """``HYPERSDK_HYPER2KVM_PATHS``: absolute paths, in the administrator's order."""
    return list(getattr(settings, "HYPERSDK_HYPER2KVM_PATHS", []))


def detected_converter() -> str | None:
    """The hyper2kvm on this process's PATH (the daemon's environment), if any."""
    return shutil.which("hyper2kvm")


def allowed_converters() -> list[str]:
    """Every path a job may name: the configured ones, then the auto-detected one."""
    allowed = configured_converters()
    detected = detected_converter()
    if detected and detected not in allowed:
        allowed.append(detected)
    return allowed


def check_converter(path: str | None) -> str:
    """The allowed converter ``path`` names ("" for auto-detection); else ConverterNotAllowed.

    Compared as written (normalised, never resolved): resolving a request's symlink would let it
    be swapped after the check. The string returned is the administrator's, not the request's.
    """
    if not path:
        return ""
    wanted = os.path.normpath(path)
    for allowed in allowed_converters():
        if os.path.normpath(allowed) == wanted:
            return allowed
    allowed = allowed_converters()
    if not allowed:
        raise ConverterNotAllowed(
            "not a configured converter; this server has none (HYPERSDK_HYPER2KVM_PATHS): leave it empty"
        )
    raise ConverterNotAllowed(
        f"not a configured converter; leave it empty for auto-detection or use one of: {', '.join(allowed)}"
    )
