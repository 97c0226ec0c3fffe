"""Check a domain document against libvirt's own RELAX NG schema with ``virt-xml-validate``
(Debian ``libvirt-clients``)."""

from __future__ import annotations

__all__ = ["InvalidDomain", "find_validator", "validate_domain"]


class InvalidDomain(Exception):
    """The validator is missing, or refused the document (one line)."""


def find_validator() -> str:
    """The ``virt-xml-validate`` binary; InvalidDomain naming the package when none is found."""
    raise NotImplementedError


def validate_domain(path: str, *, validator: str | None = None) -> None:
    """Validate the domain file at ``path``; InvalidDomain with the validator's first error."""
    raise NotImplementedError
