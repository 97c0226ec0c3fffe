"""How webhooks and their deliveries read in a terminal: pure functions of the API's dicts."""

from __future__ import annotations

from typing import Any

from cli.render import table

WEBHOOK_COLUMNS = ("INDEX", "URL", "FORMAT", "EVENTS", "ENABLED", "LAST DELIVERY")


def delivery_result(delivery: dict[str, Any] | None) -> str:
    """A delivery's outcome in a cell: ``200``, ``HTTP 500``, the connection error, or ``pending``."""
    if not delivery:
        return "-"
    if delivery.get("status") == "delivered" and delivery.get("status_code"):
        return str(delivery["status_code"])
    if delivery.get("error"):
        return delivery["error"]
    if delivery.get("status_code"):
        return f"HTTP {delivery['status_code']}"
    return delivery.get("status") or "-"


def webhook_enabled(webhook: dict[str, Any]) -> str:
    if webhook["enabled"]:
        return "yes"
    reason = webhook.get("disabled_reason")
    return f"no ({reason})" if reason else "no"


def webhook_table(webhooks: list[dict[str, Any]], last: dict[str, dict[str, Any] | None]) -> list[str]:
    """Columns INDEX, URL, FORMAT, EVENTS, ENABLED, LAST DELIVERY (``last``: each webhook id's newest)."""
    rows = [
        (
            str(webhook["index"]),
            webhook["url"],
            webhook.get("format") or "standard",
            ",".join(webhook["events"]),
            webhook_enabled(webhook),
            delivery_result(last.get(webhook["id"])),
        )
        for webhook in webhooks
    ]
    return table(WEBHOOK_COLUMNS, rows)


def webhook_added_lines(webhook: dict[str, Any]) -> list[str]:
    state = "" if webhook["enabled"] else " (disabled)"
    fmt = webhook.get("format") or "standard"
    added = (
        f"added webhook {webhook['index']} ({webhook['id']}): {webhook['url']} "
        f"format: {fmt} events: {' '.join(webhook['events'])}{state}"
    )
    if fmt != "standard":  # chat services check no signature: nothing to store
        return [added, f"{fmt} messages are not signed (only the standard format is)"]
    return [added, f"signing secret: {webhook['secret']} (shown once: store it now)"]


def webhook_deleted_line(webhook: dict[str, Any]) -> str:
    return f"deleted webhook {webhook['index']} ({webhook['id']}): {webhook['url']}"


def webhook_test_line(webhook: dict[str, Any], result: dict[str, Any]) -> str:
    return f"test delivery to {webhook['url']}: HTTP {result['status_code']} in {result['latency_ms']:.0f} ms"


def webhook_test_failure(webhook: dict[str, Any], result: dict[str, Any]) -> str:
    """Without ``error: ``: the terminal adds it."""
    reason = result.get("error") or f"HTTP {result.get('status_code')}"
    if result.get("status_code") and str(result["status_code"]) not in reason:
        reason = f"HTTP {result['status_code']}: {reason}"
    return f"test delivery to {webhook['url']} failed: {reason}"
