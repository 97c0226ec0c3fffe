"""The tar readers an OVA must satisfy, as tests call them: GNU tar, Python's tarfile and Go's
archive/tar (govc ``import.ova``), the last through a tiny standard-library Go program built
offline once and cached like the vSphere simulator."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

from tests.vsphere_sim.harness import build_go

SOURCE = Path(__file__).resolve().parent / "tar_reader" / "main.go"


def go_tar_reader() -> Path:
    """The Go reader's binary, built (GOPATH mode, no network) when its source changed."""
    return build_go(SOURCE.parent, "go-tar-reader", needs_govmomi=False)


def go_list(archive: Path, *, hash_contents: bool = False) -> list[dict]:
    """Members as Go's archive/tar reads them: name, size, format (and sha256)."""
    command = [str(go_tar_reader()), *(["-hash"] if hash_contents else []), str(archive)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"Go archive/tar cannot read {archive.name}: {result.stderr.strip()}")
    return [json.loads(line) for line in result.stdout.splitlines()]


def gnu_tar_list(archive: Path) -> list[tuple[str, int]]:
    """(name, size) of each member from ``tar tvf``, names printed as stored."""
    result = subprocess.run(
        ["tar", "--quoting-style=literal", "-tvf", str(archive)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, LC_ALL="C.UTF-8"),
    )
    members = []
    for line in result.stdout.splitlines():
        # -rw-r--r-- 0/0   8589935104 2026-11-29 21:00 name with spaces
        fields = line.split(None, 5)
        members.append((fields[5], int(fields[2])))
    return members


def python_list(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive, "r:") as tar:  # "r:": a plain tar, no whole-file compression
        return tar.getmembers()
