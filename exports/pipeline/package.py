"""Pack an export into an OVA: a tar with the ``.ovf`` first, then the ``.mf``, then the disks.

``compress`` gzips the whole tar (still named ``.ova``): ``tar xf`` and virt-v2v read it as is.
"""

from __future__ import annotations

import errno
import os
import tarfile
from pathlib import Path

from exports.pipeline.errors import OutputError


def write_ova(ova_path: Path, members: list[Path], *, compress: bool) -> Path:
    part = ova_path.with_name(ova_path.name + ".part")
    mode = "w:gz" if compress else "w"
    kwargs = {"compresslevel": 1} if compress else {}
    try:
        # ustar: what OVF 1.x requires of an OVA, and every tar reads it.
        with tarfile.open(part, mode, format=tarfile.USTAR_FORMAT, **kwargs) as tar:
            for member in members:
                info = tar.gettarinfo(str(member), arcname=member.name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(member, "rb") as handle:
                    tar.addfile(info, handle)
        with open(part, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(part, ova_path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise OutputError(f"disk full writing {ova_path} (ENOSPC): partial files removed") from None
        raise OutputError(f"cannot write {ova_path}: {exc.strerror}") from None
    return ova_path
