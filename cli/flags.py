"""Flags as the guide writes them (Go style, ``-status``) and as operators type them (``--status``).

No Django here: ``hyperctl`` builds its parser before (or without) loading the ORM."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from exports.limits import MAX_PAGE
from exports.pipeline.options import OPTIONS, InvalidOptions, Option, parse_duration


def whole_number(what: str, low: int, high: int) -> Callable[[str], int]:
    """The ``type`` of every whole-number flag: ASCII digits only, from ``low`` to ``high``.

    int() would also take " 3", "+3", "1_0" and other scripts' digits ("٣"), and any size the
    database then chokes on: each is a one-line usage error (exit 2) naming the range instead.
    ``high`` is the bound the API enforces for the same value.
    """

    def parse(text: str) -> int:
        digits = text.lstrip("0") or "0"
        if text.isascii() and text.isdigit() and len(digits) <= len(str(high)) and low <= int(digits) <= high:
            return int(digits)
        raise argparse.ArgumentTypeError(f"invalid {what} {text[:40]!r}: a whole number from {low} to {high}")

    return parse


def duration(maximum: float) -> Callable[[str], str]:
    """The ``type`` of a duration flag: minutes or 2h/90m/45s, at most ``maximum`` seconds (the
    job spec's bound), kept as given."""

    def parse(text: str) -> str:
        try:
            parse_duration(text, maximum=maximum)
        except InvalidOptions as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse


def _option_flag_kwargs(option: Option) -> dict[str, Any]:
    """add_argument's arguments for an export option's flag (switches default to False, the
    rest to None: a daemon job then carries only what was asked)."""
    kwargs: dict[str, Any] = {"dest": option.name, "help": option.cli_help}
    if option.kind == "switch":
        return kwargs | {"action": "store_true"}
    if option.metavar:
        kwargs["metavar"] = option.metavar
    if option.kind == "choice":
        kwargs["choices"] = option.values
    elif option.kind == "count":
        kwargs["type"] = whole_number(option.name.replace("_", " "), option.low, int(option.high))
    elif option.kind == "duration":
        kwargs["type"] = duration(option.high)
    return kwargs


def add_option_flags(parser: argparse.ArgumentParser, *, schedule: bool = False) -> None:
    """One flag per export option that has one (exports.pipeline.options), ``-name``/``--name``;
    for a schedule's job, only the options a schedule may carry (``Option.schedulable``)."""
    for option in OPTIONS:
        if option.flag_name and (option.schedulable or not schedule):
            go_flag(parser, option.flag_name, **_option_flag_kwargs(option))


def engine_options_from_flags(opts: dict[str, Any]) -> dict[str, Any]:
    """The export options given as flags, as ExportOptions keyword arguments (defaults for the
    rest). A duration's text was checked by its type; InvalidOptions otherwise."""
    values = {}
    for option in OPTIONS:
        given = opts.get(option.name)
        values[option.name] = option.default if given is None or given is False else option.from_flag(given)
    return values


def job_spec_from_flags(opts: dict[str, Any]) -> dict[str, Any]:
    """The export options given as flags, as job spec fields (API units); what was not given is
    left out, for the daemon to default. InvalidOptions for a bad duration."""
    spec = {}
    for option in OPTIONS:
        given = opts.get(option.name)
        if given is None or given is False:
            continue
        spec[option.name] = option.to_api(option.from_flag(given)) if option.kind == "duration" else given
    return spec


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


def add_job_flags(parser: argparse.ArgumentParser) -> None:
    """The export job's flags, as ``hyperexport`` spells them, for the job a schedule's runs submit."""
    go_flag(
        parser,
        "output",
        metavar="DIR",
        help="output directory on the daemon's machine (default: its data dir)",
    )
    go_flag(
        parser,
        "vcenter",
        metavar="NAME",
        help="a vCenter's name in the daemon (default: the workers' GOVC_*)",
    )
    add_option_flags(parser, schedule=True)


class OneLineErrorParser(argparse.ArgumentParser):
    """A usage error is one line, ``<prog>: error: <what>``, and exit status 2 (``-h`` shows the
    usage). Subparsers are of this class too."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_page_flags(parser: argparse.ArgumentParser, things: str) -> None:
    """``-page N`` (default 1, 50 a page) and ``-all`` for a list command."""
    pages = parser.add_mutually_exclusive_group()
    page = whole_number("page", 1, MAX_PAGE)
    go_flag(pages, "page", type=page, default=1, metavar="N", help=f"the Nth page of 50 {things}")
    go_flag(pages, "all", action="store_true", help=f"every one of the {things}, however many")


def chosen_page(opts: dict[str, Any]) -> int | None:
    """The page to ask a backend for; None for every page."""
    return None if opts.get("all") else opts.get("page") or 1


def note_more_pages(listing: dict[str, Any], things: str, terminal: Any) -> None:
    """On stderr (stdout stays the rows): which page this was, when there are more."""
    if listing["pages"] > 1:
        page, pages = listing["page"], listing["pages"]
        more = f"-page {page + 1} for the next, " if page < pages else ""
        terminal.note(f"page {page} of {pages} ({listing['count']} {things}): {more}-all for every one")
