"""``-define URI``: define the written domain with libvirt (``virsh define``), never start it.

Only URIs the administrator allows may be used (``HYPERSDK_LIBVIRT_DEFINE_URIS``, spaces or
commas between them; default ``qemu:///system qemu:///session``): a libvirt URI can name a
transport that runs a program (``qemu+ext://…?command=``) or reach other hosts over ssh, so a
request never picks one freely. An existing domain of the same name or UUID is never replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

__all__ = [
    "ALLOWED_URIS_VARIABLE",
    "DefineError",
    "DomainExists",
    "allowed_uris",
    "check_uri",
    "define_domain",
    "check_definable",
]

ALLOWED_URIS_VARIABLE = "HYPERSDK_LIBVIRT_DEFINE_URIS"
DEFAULT_ALLOWED_URIS = ("qemu:///system", "qemu:///session")
_TIMEOUT_SECONDS = 60
# virsh's messages are read ("failed to get domain"): untranslated, whatever the user's locale.
ENGLISH = {**os.environ, "LC_ALL": "C.UTF-8", "LANGUAGE": ""}


class DefineError(Exception):
    """virsh is missing, the URI cannot be reached, or the domain cannot be defined (one line)."""


class DomainExists(DefineError):
    """A domain of that name or UUID is defined at the URI already: never replaced."""


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
    """Before the export's transfer: virsh is installed, ``uri`` answers, and no domain there
    has this ``name`` or ``uuid`` (a nightly export never replaces the domain a previous one
    defined, which may be running). Raises DefineError."""
    for lookup in [name, *([uuid] if uuid else [])]:
        done = _virsh(uri, "domname" if lookup == uuid else "domuuid", lookup)
        if done.returncode == 0:
            raise DomainExists(
                f"a domain {'with UUID' if lookup == uuid else 'named'} {lookup!r} is already defined at {uri}: "
                "not replaced"
            )
        message = _first_error(done)
        if "failed to get domain" not in message.lower() and "domain not found" not in message.lower():
            raise DefineError(f"cannot reach libvirt at {uri}: {message}")


def define_domain(uri: str, xml_path: str) -> None:
    """``virsh -c <uri> define <xml_path>``; DefineError (virsh's first error line) on failure."""
    done = _virsh(uri, "define", xml_path)
    if done.returncode != 0:
        raise DefineError(f"virsh define at {uri} failed: {_first_error(done)}")


def find_virsh() -> str:
    found = shutil.which("virsh")
    if found is None:
        raise DefineError("virsh not found: install libvirt-clients to define the domain")
    return found


def _virsh(uri: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [find_virsh(), "--quiet", "--connect", check_uri(uri), *arguments]
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,  # never a prompt for credentials
            env=ENGLISH,
        )
    except subprocess.TimeoutExpired:
        raise DefineError(f"libvirt at {uri} did not answer in {_TIMEOUT_SECONDS} s") from None
    except OSError as exc:
        raise DefineError(f"virsh could not run: {exc.strerror}") from None


def _first_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    # virsh says what it tried first ("Failed to define domain from x.xml"), then why: the cause.
    errors = [
        line
        for line in lines
        if line.startswith("error:") and "failed to connect to the hypervisor" not in line
    ]
    text = errors[-1] if errors else ""
    text = text or (lines[0] if lines else f"exit status {done.returncode}")
    return text.removeprefix("error:").strip()[:300]
