"""Small strict parsers for settings read from the environment.

A bad value stops start-up with a message naming the variable, rather than being
silently replaced by a default. Secrets may also come from ``<NAME>_FILE``.
"""

from __future__ import annotations

import os
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable holds a value we cannot use."""


def env_str(name: str, default: str = "") -> str:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_path}: {exc.strerror}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false, yes/no), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_abs_paths(name: str) -> list[str]:
    """A comma-separated list of absolute paths (normalised); a relative one is a ConfigError."""
    paths = env_list(name, [])
    for path in paths:
        if not os.path.isabs(path):
            raise ConfigError(f"{name} must list absolute paths, got {path!r}")
    return [os.path.normpath(path) for path in paths]
