"""``-libvirt``: after conversion, ``<output>/<stem>.xml``, a libvirt domain for the converted
disks, validated by ``virt-xml-validate``; with ``-define URI``, defined there once the export
is verified (``DefineDomain``, the last step). Steps: ``WriteDomain``, ``DefineDomain``."""

from __future__ import annotations

from exports.pipeline.step import ExportRun, Step

__all__ = ["DOMAIN_SUFFIX", "DefineDomain", "WriteDomain", "domain_file_name"]

DOMAIN_SUFFIX = ".xml"


def domain_file_name(stem: str) -> str:
    """The domain file of an export whose files are named ``stem``: ``<stem>.xml``."""
    return stem + DOMAIN_SUFFIX


class WriteDomain(Step):
    """Plan the domain from ``run.record`` and the conversion's outputs, write it, validate it,
    and record it in the conversion report (``libvirt_domain``) and the result."""

    def check(self, run: ExportRun) -> None:
        raise NotImplementedError

    def applies(self, run: ExportRun) -> bool:
        return run.options.libvirt and run.result is not None and run.result.conversion is not None

    def run(self, run: ExportRun) -> None:
        raise NotImplementedError

    def companion_names(self, stem: str) -> list[str]:
        return [domain_file_name(stem)]


class DefineDomain(Step):
    """``-define URI``: ``virsh define`` the written domain, after verification, never started."""

    def check(self, run: ExportRun) -> None:
        raise NotImplementedError

    def applies(self, run: ExportRun) -> bool:
        return bool(run.options.define_uri) and run.result is not None and bool(run.result.libvirt_domain)

    def run(self, run: ExportRun) -> None:
        raise NotImplementedError
