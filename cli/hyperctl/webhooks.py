"""``hyperctl webhooks list|add|delete|test``: notifications of job events to HTTP receivers."""

from __future__ import annotations

from typing import Any

from cli import render_webhooks
from cli.backends import CLIError, JobsBackend
from cli.flags import go_flag
from cli.hyperctl.paged_resources import (
    add_id_actions,
    add_list_action,
    add_resource_group,
    say_page,
)
from cli.terminal import Terminal
from webhooks.choices import DEFAULT_EVENTS, EVENTS, FORMATS


def register(subparsers, parents) -> None:
    actions = add_resource_group(
        subparsers, parents, "webhooks", help="webhook notifications of job events: list, add, delete, test"
    )

    add_list_action(
        actions,
        parents,
        "webhooks",
        help="every webhook: index, URL, format, events, enabled, last delivery",
        run=run_list,
    )

    add = actions.add_parser(
        "add",
        parents=parents,
        help="a webhook receiving job events",
        description="e.g. hyperctl webhooks add https://hooks.slack.com/services/xxx "
        f"job.started job.completed job.failed. Events: {', '.join(EVENTS)}, or * for all "
        f"(default: {' '.join(DEFAULT_EVENTS)}).",
    )
    add.add_argument("url", metavar="URL", help="http or https URL of the receiver")
    add.add_argument(
        "events", metavar="EVENT", nargs="*", default=[], help=f"default: {' '.join(DEFAULT_EVENTS)}"
    )
    go_flag(add, "disabled", action="store_true", help="add it disabled")
    go_flag(
        add,
        "format",
        metavar="F",
        choices=FORMATS,
        help="the body: standard (signed JSON), slack, discord or teams (default: from the URL)",
    )
    add.set_defaults(run=run_add)

    add_id_actions(
        actions,
        parents,
        [
            ("delete", "remove a webhook (the indexes after it move down by one)", run_delete),
            (
                "test",
                'send a test event now (a signed {"event": "test", "data": {}}, or a chat message) and report the answer',
                run_test,
            ),
        ],
        dest="index",
        metavar="INDEX",
        help="0-based, as in `webhooks list` (or the id wh-...)",
    )


def run_list(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    return say_page(
        backend.list_webhooks,
        "webhooks",
        opts,
        terminal,
        table=lambda webhooks: render_webhooks.webhook_table(webhooks, _last_deliveries(backend, webhooks)),
    )


def _last_deliveries(backend: JobsBackend, webhooks: list[dict[str, Any]]) -> dict[str, Any]:
    last: dict[str, Any] = {}
    for webhook in webhooks:
        try:
            newest = backend.webhook_deliveries(webhook["id"], limit=1)
        except CLIError:  # deleted meanwhile
            newest = []
        last[webhook["id"]] = newest[0] if newest else None
    return last


def run_add(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    spec: dict[str, Any] = {"url": opts["url"]}
    if opts["events"]:
        spec["events"] = opts["events"]
    if opts.get("disabled"):
        spec["enabled"] = False
    if opts.get("format"):
        spec["format"] = opts["format"]
    for line in render_webhooks.webhook_added_lines(backend.add_webhook(spec)):
        terminal.say(line)
    return 0


def run_delete(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    webhook = backend.get_webhook(opts["index"])
    backend.delete_webhook(webhook["id"])  # by id: another delete meanwhile cannot shift it
    terminal.say(render_webhooks.webhook_deleted_line(webhook))
    return 0


def run_test(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    webhook = backend.get_webhook(opts["index"])
    result = backend.test_webhook(webhook["id"])
    if not result["ok"]:
        raise CLIError(render_webhooks.webhook_test_failure(webhook, result))
    terminal.say(render_webhooks.webhook_test_line(webhook, result))
    return 0
