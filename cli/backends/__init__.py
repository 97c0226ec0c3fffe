"""Where the CLIs find jobs and schedules: the local services in-process, or a daemon over its
REST API.

Both backends return the same plain dicts as the API's JSON, so nothing above them knows which
one answered. Every failure is a ``CLIError``: one line for stderr and an exit status.

This package's public API is what it imports here: ``protocol`` (what a backend answers),
``local`` (the services in this process), ``remote`` (a daemon's REST API), ``errors``.
"""

from __future__ import annotations

import os
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


# An API token is 40 hex digits: a file longer than this holds no token (and /dev/zero never ends).
MAX_TOKEN_FILE_BYTES = 4096


def read_token(token_file: str | None) -> str:
    """From ``--token-file``, else $HYPERSDK_API_TOKEN (or the file named by $HYPERSDK_API_TOKEN_FILE)."""
    from cli.backends.remote import API_TOKEN_ENV

    if token_file:
        token = _token_from_file(
            token_file, f"token file {token_file}", f"cannot read token file {token_file}"
        )
        if not token:
            raise CLIError(f"token file {token_file} is empty")
        return token
    named = os.environ.get(f"{API_TOKEN_ENV}_FILE")
    if named:
        return _token_from_file(
            named, f"{API_TOKEN_ENV}_FILE {named}", f"{API_TOKEN_ENV}_FILE: cannot read {named}"
        )
    try:
        return env_str(API_TOKEN_ENV).strip()
    except ConfigError as exc:
        raise CLIError(str(exc)) from None


def _token_from_file(path: str, label: str, unreadable: str) -> str:
    """The token in ``path`` (stripped): at most MAX_TOKEN_FILE_BYTES of UTF-8 text, never echoed.
    ``label`` names the file in errors; ``unreadable`` says it could not be read."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise CLIError(f"{unreadable}: {exc.strerror}") from None
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise CLIError(f"{label} is longer than {MAX_TOKEN_FILE_BYTES} bytes: it holds no API token")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CLIError(f"{label} is not UTF-8 text: it holds no API token") from None
    return token
