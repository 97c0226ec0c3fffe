"""``DomainPlan`` → libvirt domain XML (https://libvirt.org/formatdomain.html), built with
ElementTree so every name and path is escaped by the serializer, never by hand."""

from __future__ import annotations

from libvirt_domain.plan import DomainPlan

__all__ = ["domain_xml"]


def domain_xml(plan: DomainPlan) -> str:
    """The ``<domain type='kvm'>`` document for ``plan``, UTF-8 text ending in a newline."""
    raise NotImplementedError
