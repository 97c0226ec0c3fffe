"""Flags as the guide writes them (Go style, ``-status``) and as operators type them (``--status``)."""

from __future__ import annotations

import argparse
from typing import Any


def go_flag(parser: argparse.ArgumentParser, name: str, *aliases: str, **kwargs: Any) -> None:
    """``-name`` and ``--name`` (plus aliases such as ``-f``) for one option."""
    kwargs.setdefault("dest", name.replace("-", "_"))
    parser.add_argument(*aliases, f"-{name}", f"--{name}", **kwargs)


def add_connection_flags(parser: argparse.ArgumentParser, *, keep_earlier: bool = False) -> None:
    """``--daemon-url`` and ``--token-file``. With ``keep_earlier`` (a subcommand's copy), an
    absent flag leaves the value given before the subcommand alone."""
    default: Any = argparse.SUPPRESS if keep_earlier else None
    go_flag(
        parser,
        "daemon-url",
        metavar="URL",
        default=default,
        help="the daemon's API, e.g. http://host:8080 (default: $HYPERSDK_DAEMON_URL; "
        "neither: the local services, on this machine's database)",
    )
    go_flag(
        parser,
        "token-file",
        metavar="FILE",
        default=default,
        help="file holding the API token (default: $HYPERSDK_API_TOKEN)",
    )


def connection_flags_parent() -> argparse.ArgumentParser:
    """A parent parser giving every subcommand the connection flags too."""
    parent = argparse.ArgumentParser(add_help=False)
    add_connection_flags(parent, keep_earlier=True)
    return parent
