"""Pack an export into an OVA: a tar with the ``.ovf`` first, then the ``.mf``, then the disks.

``compress`` gzips the whole tar (still named ``.ova``): ``tar xf`` and virt-v2v read it as is.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from exports.pipeline.files import atomic_path


def write_ova(ova_path: Path, members: list[Path], *, compress: bool) -> Path:
    mode = "w:gz" if compress else "w"
    kwargs = {"compresslevel": 1} if compress else {}
    with atomic_path(ova_path) as part:
        # ustar: what OVF 1.x requires of an OVA, and every tar reads it.
        with tarfile.open(part, mode, format=tarfile.USTAR_FORMAT, **kwargs) as tar:
            for member in members:
                info = tar.gettarinfo(str(member), arcname=member.name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(member, "rb") as handle:
                    tar.addfile(info, handle)
    return ova_path
