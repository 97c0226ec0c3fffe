"""Where the CLIs find jobs and schedules: the local services in-process, or a daemon over its
REST API.

Both backends return the same plain dicts as the API's JSON, so nothing above them knows which
one answered. Every failure is a ``CLIError``: one line for stderr and an exit status.

This package's public API is what it imports here: ``protocol`` (what a backend answers),
``local`` (the services in this process), ``remote`` (a daemon's REST API), ``errors``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.backends.errors import CLIError, UsageError, error_message, no_such_page
from cli.backends.protocol import (
    ALL_PAGE_SIZE,
    DAEMON_URL_ENV,
    FINISHED_STATUSES,
    JOB_STATUSES,
    LIST_PAGE_SIZE,
    JobsBackend,
)
from hypersdk.lib.env import ConfigError, env_str

if TYPE_CHECKING:
    from cli.backends.local import LocalBackend
    from cli.backends.remote import (
        API_TOKEN_ENV,
        TIMEOUT_SECONDS,
        TOKEN_REFUSED,
        RemoteBackend,
        daemon_base_url,
    )

# Loaded on first use: the local backend loads the ORM and every app, the remote one httpx;
# ``hyperctl --help`` or a remote command needs neither of the other's.
_LAZY = {
    "LocalBackend": "cli.backends.local",
    "API_TOKEN_ENV": "cli.backends.remote",
    "TIMEOUT_SECONDS": "cli.backends.remote",
    "TOKEN_REFUSED": "cli.backends.remote",
    "RemoteBackend": "cli.backends.remote",
    "daemon_base_url": "cli.backends.remote",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "ALL_PAGE_SIZE",
    "API_TOKEN_ENV",
    "DAEMON_URL_ENV",
    "FINISHED_STATUSES",
    "JOB_STATUSES",
    "LIST_PAGE_SIZE",
    "TIMEOUT_SECONDS",
    "TOKEN_REFUSED",
    "CLIError",
    "JobsBackend",
    "LocalBackend",
    "RemoteBackend",
    "UsageError",
    "daemon_base_url",
    "error_message",
    "no_such_page",
    "open_backend",
    "read_token",
]


def open_backend(daemon_url: str | None = None, token_file: str | None = None) -> JobsBackend:
    """The daemon at ``--daemon-url`` or $HYPERSDK_DAEMON_URL if given, else the local services."""
    url = (daemon_url or os.environ.get(DAEMON_URL_ENV, "")).strip()
    if not url:
        from hypersdk.lib.env import setup_django_or_exit

        setup_django_or_exit()
        from cli.backends.local import LocalBackend

        return LocalBackend()
    from cli.backends.remote import RemoteBackend

    return RemoteBackend(url, read_token(token_file))


def read_token(token_file: str | None) -> str:
    """From ``--token-file``, else $HYPERSDK_API_TOKEN (or the file named by $HYPERSDK_API_TOKEN_FILE)."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise CLIError(f"cannot read token file {token_file}: {exc.strerror}") from None
        if not token:
            raise CLIError(f"token file {token_file} is empty")
        return token
    from cli.backends.remote import API_TOKEN_ENV

    try:
        return env_str(API_TOKEN_ENV).strip()
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
