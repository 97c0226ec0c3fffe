"""Where exports may write: only inside HYPERSDK_EXPORT_ROOTS, whatever path a client sends."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from django.conf import settings

# Linux's limits: a longer name or path fails only later, half way into an export.
NAME_MAX = 255
PATH_MAX = 4096


class OutputOutsideRoots(ValueError):
    pass


def default_output_root() -> Path:
    """The directory that holds exports given no output path, always inside an export root.

    ``<HYPERSDK_DATA_DIR>/exports`` when it lies inside one, else the first export root that
    exists, else the first one listed. Raises OutputOutsideRoots when no root is configured.
    """
    candidates = [Path(settings.DATA_DIR) / "exports"]
    roots = [Path(root) for root in settings.HYPERSDK_EXPORT_ROOTS]
    candidates += [root for root in roots if root.is_dir()] + roots
    for candidate in candidates:
        try:
            return resolve_output_path(str(candidate))
        except OutputOutsideRoots:
            continue
    raise OutputOutsideRoots(
        "no output_path given and no default: HYPERSDK_EXPORT_ROOTS holds no usable root"
    )


def default_output_path(name: str, *, root: Path | None = None) -> str:
    """``<default root>/<name>``: the one place an export's default output path is made.

    ``name`` is relative (``<vm>-<job id>``, ``<schedule>-<slot>``). The result is
    resolved and checked like a client's path, so a default the worker would refuse is
    refused here, at submit, instead (OutputOutsideRoots). ``root``: default_output_root()
    already found, for a batch that needs it once rather than once per job.
    """
    if not name or os.path.isabs(name):
        raise OutputOutsideRoots(f"cannot name a default output directory {name!r}")
    return str(resolve_output_path(str((root or default_output_root()) / name)))


def resolve_output_path(path: str) -> Path:
    """The real path (``..`` and symlinks resolved) if it lies inside an allowed root."""
    if not path or any(unicodedata.category(char) == "Cc" for char in path):
        raise OutputOutsideRoots("output_path must be a path without NUL or other control characters")
    expanded = os.path.expanduser(path)
    if not os.path.isabs(expanded):
        # Relative to what? The daemon's working directory is no answer a client can know.
        raise OutputOutsideRoots("output_path must be an absolute path")
    try:
        encoded = os.fsencode(expanded)
    except UnicodeEncodeError:
        raise OutputOutsideRoots("output_path must be valid Unicode text") from None
    if len(encoded) > PATH_MAX or any(len(name) > NAME_MAX for name in encoded.split(b"/")):
        raise OutputOutsideRoots(
            f"output_path is too long: at most {PATH_MAX} bytes, {NAME_MAX} bytes per name"
        )
    try:
        # Strict: a symlink loop or a file in the middle is refused now, not at mkdir time.
        candidate = Path(os.path.realpath(expanded, strict=True))
    except FileNotFoundError:  # the usual case: the output directory does not exist yet
        candidate = Path(os.path.realpath(expanded))
    except OSError as exc:
        raise OutputOutsideRoots(f"output_path cannot be created: {exc.strerror}") from None
    if inside_export_roots(candidate):
        return candidate
    raise OutputOutsideRoots(
        f"output_path must be inside one of the export roots: {', '.join(settings.HYPERSDK_EXPORT_ROOTS)}"
    )


def inside_export_roots(path: str | os.PathLike[str], *, strictly: bool = False) -> bool:
    """Whether ``path``, once resolved (``..`` and symlinks, as the kernel would follow them),
    is an export root or lies inside one: the one containment check of the project.

    ``strictly``: what may be deleted — inside a root but not a root itself, and holding no
    root (a root configured inside another is never removed with its parent's directory).
    """
    real = Path(os.path.realpath(path))
    roots = [Path(os.path.realpath(root)) for root in settings.HYPERSDK_EXPORT_ROOTS]
    if not strictly:
        return any(real.is_relative_to(root) for root in roots)
    return any(real != root and real.is_relative_to(root) for root in roots) and not any(
        root.is_relative_to(real) for root in roots
    )
