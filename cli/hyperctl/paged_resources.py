"""What ``hyperctl schedules`` and ``hyperctl webhooks`` share: a ``list`` action over the API's
pages, and actions that take one object's id."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cli.flags import add_page_flags, chosen_page, go_flag, note_more_pages
from cli.terminal import Terminal

Run = Callable[..., int]


def add_resource_group(subparsers, parents, name: str, *, help: str):
    """``hyperctl <name> ACTION ...``; returns where to add its actions."""
    group = subparsers.add_parser(name, parents=parents, help=help)
    return group.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def add_list_action(actions, parents, things: str, *, help: str, run: Run, quiet: str = "") -> None:
    """``list [-json] [-quiet] [-page N | -all]``; ``quiet``: what -quiet prints ("" for no flag)."""
    listing = actions.add_parser("list", parents=parents, help=help)
    go_flag(listing, "json", action="store_true", help=f"print the API's JSON (the page's {things})")
    if quiet:
        go_flag(listing, "quiet", action="store_true", help=quiet)
    add_page_flags(listing, things)
    listing.set_defaults(run=run)


def add_id_actions(
    actions, parents, entries: list[tuple[str, str, Run]], *, dest: str, metavar: str, help: str | None = None
) -> None:
    """One action per ``(name, help, run)``, each taking the object's id as ``dest``."""
    for action, text, run in entries:
        parser = actions.add_parser(action, parents=parents, help=text)
        parser.add_argument(dest, metavar=metavar, help=help)
        parser.set_defaults(run=run)


def say_page(
    list_page: Callable[..., dict[str, Any]],
    things: str,
    opts: dict[str, Any],
    terminal: Terminal,
    *,
    table: Callable[[list[dict[str, Any]]], list[str]],
    tsv: Callable[[list[dict[str, Any]]], list[str]] | None = None,
) -> int:
    """The page of ``things`` -page/-all chose, from a backend's ``list_page``: the API's JSON,
    -quiet's ``tsv`` lines, "no <things>", or the ``table``; then, on stderr, which page it was
    when there are more."""
    listing = list_page(page=chosen_page(opts))
    items = listing["results"]
    if opts["json"]:
        lines = [json.dumps(items, indent=2)]
    elif tsv is not None and opts["quiet"]:
        lines = tsv(items)
    elif not items:
        lines = [f"no {things}"]
    else:
        lines = table(items)
    for line in lines:
        terminal.say(line)
    note_more_pages(listing, things, terminal)
    return 0
