"""Failures of an export, each with a one-line message fit to show an operator as is.

A message that tells the user which option to use is defined once and worded per surface:
``str(exc)`` in the CLI's words (``hyperexport`` prints it), ``worded_for(origin)`` for a job
from the API, the dashboard or a schedule, naming that surface's own control.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from exports.pipeline.options import OPTION

if TYPE_CHECKING:
    from inventory.findings import Finding


class ExportError(Exception):
    """An export failed; ``str(exc)`` is the one-line message for the user."""

    def worded_for(self, surface: str) -> str:
        """The message for a job from ``surface`` (cli, api, dashboard, schedule): the same for
        most errors; one that names an option names that surface's control for it."""
        return str(self)


class ExportCancelled(ExportError):
    def __init__(self, message: str = "export cancelled") -> None:
        super().__init__(message)


class VCenterConnectionError(ExportError):
    """The vCenter could not be reached, trusted or logged into, or sent what cannot be read."""


class UnreadableAnswer(ValueError):
    """vCenter's answer cannot be read (not XML, cut short, an unknown type, too large, endless
    pages); ``str(exc)`` says what, in one line. Raised where the answer is decoded, which
    does not know the vCenter's name: ``vsphere_session`` makes it a VCenterConnectionError
    ("vCenter <host> sent an answer that cannot be read: <what>")."""


class VMNotFound(ExportError):
    pass


class VMPoweredOn(ExportError):
    pass


class PowerOffNotAsked(VMPoweredOn):
    """The VM runs and the export was not asked to stop it (the ``power_off`` option)."""

    def __init__(self, vm_path: str) -> None:
        self.vm_path = vm_path
        super().__init__(self.worded_for("cli"))

    def worded_for(self, surface: str) -> str:
        refused = f"VM {self.vm_path} is powered on: shut it down first"
        how = OPTION["power_off"].how_to_ask(surface)
        return f"{refused}, or {how} to stop it" if how else refused


class LeaseError(ExportError):
    """The export lease failed or was lost. ``retryable``: vCenter went away, a new lease may work."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class DownloadError(ExportError):
    """A disk transfer failed. ``retryable`` is False when a new lease cannot help (disk full)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class OutputError(ExportError):
    """The output directory cannot be used (exists, not writable, disk full)."""


class CompletedExportHere(OutputError):
    """The output directory holds a completed export (``marker`` names its file) and the run
    was not asked to replace it (the ``overwrite`` option)."""

    def __init__(self, path: Path, marker: str) -> None:
        self.path, self.marker = path, marker
        super().__init__(self.worded_for("cli"))

    def worded_for(self, surface: str) -> str:
        held = f"{self.path} already holds a completed export ({self.marker})"
        how = OPTION["overwrite"].how_to_ask(surface)
        return f"{held}: {how} to replace it" if how else held


class PreflightBlocked(ExportError):
    """Preflight found blockers (``inventory.preflight``): the export would fail or miss data,
    so it stops before any lease or file. ``findings_for(surface)`` gives every finding worded
    for a surface; the message is each blocker's ``<reason>: <action>``, joined by ``; ``."""

    def __init__(self, findings_for: Callable[[str], list[Finding]]) -> None:
        self.findings_for = findings_for
        self.findings = findings_for("cli")
        super().__init__(self.worded_for("cli"))

    def worded_for(self, surface: str) -> str:
        found = self.findings if surface == "cli" else self.findings_for(surface)
        return "; ".join(f"{f.reason}: {f.action}" for f in found if f.level == "blocker")


class ConversionError(ExportError):
    pass


class ConverterMissing(ConversionError):
    """The hyper2kvm asked for is not an executable file."""


class VerificationError(ExportError):
    pass


class DomainError(ExportError):
    """-libvirt/-define: the domain could not be written, validated or defined (one line)."""
