"""Which converter binaries the daemon may run: the administrator's choice, never a request's.

A job (API, dashboard, schedule, imported config, local hyperctl) may leave ``hyper2kvm_path``
empty (the daemon's own hyper2kvm, on its PATH or in its Python environment; else qemu-img) or
name one of the converters the server is configured with (``HYPERSDK_HYPER2KVM_PATHS``) or the
one it auto-detects. Anything else is refused at submit and again by the worker, so a row
written before this rule or edited in the database cannot make the daemon run an arbitrary
file. ``hyperexport`` without ``--use-daemon`` does not come here: it runs as its user, who may
run any binary anyway.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import sys
from pathlib import Path

from django.conf import settings


class ConverterNotAllowed(ValueError):
    """``str(exc)`` is a one-line message that lists what is allowed."""


class ConverterUnsafe(ConverterNotAllowed):
    """A converter someone other than root or the daemon's user could replace; ``str(exc)`` is
    one line naming the path at fault and the fix."""


def configured_converters() -> list[str]:
    """``HYPERSDK_HYPER2KVM_PATHS``: absolute paths, in the administrator's order."""
    return list(getattr(settings, "HYPERSDK_HYPER2KVM_PATHS", []))


def environment_bin() -> str:
    """Where the daemon's own Python environment installs commands (a virtualenv's ``bin/``,
    beside ``sys.executable``): ``make run`` installs hyper2kvm there without putting it on PATH."""
    return os.path.dirname(sys.executable)


def detected_converter() -> str | None:
    """The hyper2kvm on this process's PATH, else the one its own environment installed; None
    if neither has one."""
    return shutil.which("hyper2kvm") or shutil.which("hyper2kvm", path=environment_bin())


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
            refuse_unsafe(allowed)
            return allowed
    allowed = allowed_converters()
    if not allowed:
        raise ConverterNotAllowed(
            "not a configured converter; this server has none (HYPERSDK_HYPER2KVM_PATHS): leave it empty"
        )
    raise ConverterNotAllowed(
        f"not a configured converter; leave it empty for auto-detection or use one of: {', '.join(allowed)}"
    )


def worker_converter(path: str | None, *, convert: bool) -> str | None:
    """The converter a worker runs for a job naming ``path``: the allowed one it names, else (when
    it converts) the auto-detected one, else None (qemu-img). Raises ConverterNotAllowed (or
    ConverterUnsafe). The detected path is returned, not looked up again later, so the file
    checked is the file run."""
    chosen = check_converter(path)
    if convert and not chosen:
        chosen = detected_converter() or ""
    if chosen:
        refuse_unsafe(chosen)
    return chosen or None


def check_converters_at_start() -> None:
    """Raise ConverterUnsafe for the first configured or detected converter, or the qemu-img on
    the daemon's PATH, that is unsafe: ``hypervisord`` and ``bootstrap_admin`` refuse to start
    rather than run it later as root."""
    qemu_img = shutil.which("qemu-img")
    for path in [*allowed_converters(), *([qemu_img] if qemu_img else [])]:
        refuse_unsafe(path)


def refuse_unsafe(path: str) -> None:
    """Raise ConverterUnsafe if anyone but root or this user could change what ``path`` runs."""
    fault = _unsafe_component(os.path.normpath(os.path.abspath(path)))
    if fault is not None:
        component, reason, fix = fault
        raise ConverterUnsafe(
            f"converter {path} is unsafe to run: {component} {reason}; run `{fix}`, or install the "
            "converter where only root can write"
        )


def _unsafe_component(full: str) -> tuple[str, str, str] | None:
    """(component, what is wrong, the command that fixes it) for the first unsafe part of
    ``full`` (an absolute, normalised path), from ``/`` down; None if every part is safe.

    Writable by group or others is unsafe, except a sticky directory (``/tmp``) above an existing
    entry: there only that entry's owner may rename or remove it. A missing part will not run;
    its parent is judged as if someone could create it. A symbolic link is judged where it points.
    """
    trusted = {0, os.geteuid()}
    parts = Path(full).parts
    chain = [str(Path(*parts[: index + 1])) for index in range(len(parts))]
    for index, component in enumerate(chain):
        try:
            info = os.lstat(component)
        except FileNotFoundError:
            return None
        if info.st_uid not in trusted:
            return component, f"is owned by {_user_name(info.st_uid)}", f"chown root {component}"
        if stat.S_ISLNK(info.st_mode):
            resolved = os.path.realpath(full)
            return None if resolved == full else _unsafe_component(resolved)
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o022:
            below = chain[index + 1] if index + 1 < len(chain) else None
            sticky_above_existing = (
                stat.S_ISDIR(info.st_mode) and mode & stat.S_ISVTX and below and os.path.lexists(below)
            )
            if not sticky_above_existing:
                return (
                    component,
                    f"is writable by group or others (mode {mode:04o})",
                    f"chmod go-w {component}",
                )
    return None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
