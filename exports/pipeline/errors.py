"""Failures of an export, each with a one-line message fit to show an operator as is."""

from __future__ import annotations


class ExportError(Exception):
    """An export failed; ``str(exc)`` is the one-line message for the user."""


class ExportCancelled(ExportError):
    def __init__(self, message: str = "export cancelled") -> None:
        super().__init__(message)


class VCenterConnectionError(ExportError):
    """The vCenter could not be reached, trusted or logged into."""


class VMNotFound(ExportError):
    pass


class VMPoweredOn(ExportError):
    pass


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


class ConversionError(ExportError):
    pass


class VerificationError(ExportError):
    pass
