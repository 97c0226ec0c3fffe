"""Where exports may write: only inside HYPERSDK_EXPORT_ROOTS, whatever path a client sends."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings


class OutputOutsideRoots(ValueError):
    pass


def default_output_root() -> Path:
    return Path(settings.DATA_DIR) / "exports"


def resolve_output_path(path: str) -> Path:
    """The real path (``..`` and symlinks resolved) if it lies inside an allowed root."""
    if not path or "\x00" in path:
        raise OutputOutsideRoots("output_path must be a path")
    candidate = Path(os.path.realpath(os.path.expanduser(path)))
    for root in settings.HYPERSDK_EXPORT_ROOTS:
        real_root = os.path.realpath(root)
        if os.path.commonpath([candidate, real_root]) == real_root:
            return candidate
    raise OutputOutsideRoots(
        f"output_path must be inside one of the export roots: {', '.join(settings.HYPERSDK_EXPORT_ROOTS)}"
    )
