"""A job's libvirt domain file (``-libvirt``), as the job page shows it and the dashboard and the
API hand it out (``GET /jobs/<id>/libvirt-domain``).

Only the job's own file is read: the path its result records (``ExportResult.libvirt_domain``),
one of the files the run left (its artifacts), directly inside the job's output directory,
which lies in an export root; the directory opened component by component and the file opened
without following any symlink, a regular file of at most MAX_DOMAIN_BYTES. Anything else —
a result edited to name another file, a file swapped for a link, a FIFO, a giant, a file a
later export wrote over it (its SHA-256 is not the one the job recorded) — is "not found" (a
404), never another file's content.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.http import HttpResponse

from exports.models import Job
from exports.output_roots import inside_export_roots
from exports.pipeline.files import open_directory
from exports.pipeline.names import domain_file_name
from hypersdk.lib.errors import NotFoundError

__all__ = ["MAX_DOMAIN_BYTES", "DomainFile", "DomainFileNotFound", "as_download", "read_domain_file"]

# A domain is a few KiB; a file far larger is not one the export wrote.
MAX_DOMAIN_BYTES = 1 << 20
# What a download's file name keeps as is: what a shell and every browser take unquoted.
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# ".xml": the pipeline names the file (``<stem>.xml``).
DOMAIN_SUFFIX = domain_file_name("")
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class DomainFileNotFound(NotFoundError):
    """The job has no domain file this daemon will hand out; ``reason`` says why, in a few words."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"no libvirt domain file for job {job_id}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class DomainFile:
    """``path`` as the job recorded it; ``download_name`` safe in a header and a shell."""

    path: str
    download_name: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def recorded_path(job: Job) -> str:
    """The domain file the job's result names; "" when it wrote none."""
    result = job.result if isinstance(job.result, dict) else {}
    path = result.get("libvirt_domain")
    return path if isinstance(path, str) else ""


def read_domain_file(job: Job) -> DomainFile:
    """The job's own domain file (see the module's docstring); DomainFileNotFound otherwise."""
    path = recorded_path(job)
    if job.status != Job.Status.COMPLETED or not path:
        raise DomainFileNotFound(job.id, "the job wrote none")
    result: dict[str, Any] = job.result  # a dict: recorded_path found the path in it
    output = result.get("output_dir") or job.output_path
    recorded = Path(path)
    artifacts = result.get("artifacts")
    if (
        not isinstance(output, str)
        or _CONTROL.search(path)
        or ".." in Path(output).parts
        or not recorded.is_absolute()
        or recorded.parent != Path(output)
        or not recorded.name.endswith(DOMAIN_SUFFIX)
        or not isinstance(artifacts, list)
        or recorded.name not in artifacts
        or not inside_export_roots(output)
    ):
        raise DomainFileNotFound(job.id, "the path recorded is not one of the files in its output directory")
    try:
        directory = open_directory(Path(output))
        try:
            descriptor = os.open(recorded.name, _OPEN_FLAGS, dir_fd=directory)
        finally:
            os.close(directory)
    except OSError:
        raise DomainFileNotFound(job.id, f"{path} is not there any more") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # a directory, a FIFO, a device
        os.close(descriptor)
        raise DomainFileNotFound(job.id, f"{path} is not a regular file")
    with os.fdopen(descriptor, "rb") as handle:
        content = handle.read(MAX_DOMAIN_BYTES + 1)
    if len(content) > MAX_DOMAIN_BYTES:
        raise DomainFileNotFound(job.id, f"{path} is larger than a domain file ({MAX_DOMAIN_BYTES} bytes)")
    expected = _recorded_digest(result)
    if expected is not None and hashlib.sha256(content).hexdigest() != expected:
        # Another export (an -overwrite into the same directory) wrote the file since.
        raise DomainFileNotFound(job.id, f"{path} is not the file this job wrote any more")
    return DomainFile(path=path, download_name=_download_name(recorded.name), content=content)


def _recorded_digest(result: dict[str, Any]) -> str | None:
    """The SHA-256 the job's conversion report gives its domain; None for a job from before it
    was recorded."""
    conversion = result.get("conversion")
    domain = conversion.get("libvirt_domain") if isinstance(conversion, dict) else None
    digest = domain.get("sha256") if isinstance(domain, dict) else None
    return digest if isinstance(digest, str) else None


def _download_name(name: str) -> str:
    """``name`` with every character but letters, digits and ``. _ + -`` as ``_``: the VM's
    name may hold quotes, spaces or another script, none of which a header should carry."""
    stem = _UNSAFE_NAME_CHARS.sub("_", name.removesuffix(DOMAIN_SUFFIX)).strip("._") or "domain"
    return stem + DOMAIN_SUFFIX


def as_download(domain: DomainFile) -> HttpResponse:
    """The file as an ``application/xml`` attachment."""
    response = HttpResponse(domain.content, content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{domain.download_name}"'
    response["Content-Length"] = str(len(domain.content))
    return response
