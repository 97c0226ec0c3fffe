"""Check a domain document against libvirt's own RELAX NG schema with ``virt-xml-validate``
(Debian ``libvirt-clients``): the schema of the libvirt installed here, so a domain that
passes is one this host's libvirt reads."""

from __future__ import annotations

import shutil
import subprocess

from libvirt_domain.define import ENGLISH

__all__ = ["VALIDATOR", "InvalidDomain", "find_validator", "validate_domain"]

VALIDATOR = "virt-xml-validate"
# It reads one small file; far longer than it ever takes, short enough not to hang an export.
_TIMEOUT_SECONDS = 120


class InvalidDomain(Exception):
    """The validator is missing, or refused the document (one line)."""


def find_validator() -> str:
    """The ``virt-xml-validate`` binary; InvalidDomain naming the package when none is found."""
    found = shutil.which(VALIDATOR)
    if found is None:
        raise InvalidDomain(
            f"{VALIDATOR} not found: install libvirt-clients (Debian, Ubuntu) or libvirt-client"
        )
    return found


def validate_domain(path: str, *, validator: str | None = None) -> None:
    """Validate the domain file at ``path``; InvalidDomain with the validator's first error."""
    command = [validator or find_validator(), path, "domain"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=_TIMEOUT_SECONDS, env=ENGLISH
        )
    except subprocess.TimeoutExpired:
        raise InvalidDomain(f"{VALIDATOR} did not answer in {_TIMEOUT_SECONDS} s") from None
    except OSError as exc:
        raise InvalidDomain(f"{VALIDATOR} could not run: {exc.strerror}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        first = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")
        raise InvalidDomain(f"libvirt's schema refuses the domain: {first[:300]}")
