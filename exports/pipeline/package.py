"""Pack an export into an OVA: a tar with the ``.ovf`` first, then the ``.mf``, then the disks.

``compress`` gzips the whole tar (still named ``.ova``): ``tar xf`` and virt-v2v read it as is.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from exports.pipeline.files import atomic_file, atomic_path, open_beneath


def write_ova(ova_path: Path, members: list[Path], *, compress: bool, dir_fd: int | None = None) -> Path:
    """With ``dir_fd``, the OVA is written in that directory and ``members`` are paths relative
    to it, none of them followed through a symlink."""
    mode = "w:gz" if compress else "w"
    kwargs = {"compresslevel": 1} if compress else {}
    target = atomic_file(ova_path, dir_fd=dir_fd) if dir_fd is not None else atomic_path(ova_path)
    with target as part:
        fileobj = part if dir_fd is not None else None
        name = None if dir_fd is not None else part
        # ustar: what OVF 1.x requires of an OVA, and every tar reads it.
        with tarfile.open(name, mode, fileobj=fileobj, format=tarfile.USTAR_FORMAT, **kwargs) as tar:
            for member in members:
                opened = (
                    os.fdopen(open_beneath(dir_fd, str(member), os.O_RDONLY), "rb")
                    if dir_fd is not None
                    else open(member, "rb")
                )
                with opened as handle:
                    info = tar.gettarinfo(arcname=member.name, fileobj=handle)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    tar.addfile(info, handle)
    return ova_path
