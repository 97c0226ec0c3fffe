"""Local receivers that answer like Slack incoming webhooks, Discord webhooks and Teams
(Power Automate) workflow webhooks: each checks what its service documents and answers with
that service's errors, so a body they accept is one the service accepts.

- Slack (api.slack.com/messaging/webhooks): JSON with ``text``, ``blocks`` or ``attachments``,
  else ``400 no_text``; ``400 invalid_payload`` for a body that is no JSON object;
  ``404 no_service`` / ``410 channel_is_archived`` for dead hooks; ``429`` with Retry-After.
- Discord (discord.com/developers/docs/resources/webhook#execute-webhook): ``content`` (at most
  2,000 characters) and/or ``embeds`` (at most 10) within the embed limits (title 256,
  description 4,096, 25 fields, field name 256 / value 1,024, footer 2,048, 6,000 in all), else
  ``400`` with ``{"code": 50006}`` or ``50035``; ``404 {"code": 10015, "message": "Unknown
  Webhook"}``; ``429`` with JSON ``retry_after`` (float seconds) and ``X-RateLimit-*`` headers.
- Teams workflow: ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "version": ...,
  "body": [...]}}]}``, else ``400``; answers ``202 Accepted``.
Every one wants ``Content-Type: application/json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.webhook_receiver import Received, Receiver, Reply

SLACK_PATH = "/services/T000/B000/XXXXXXXXXXXXXXXX"
DISCORD_PATH = "/api/webhooks/123456789012345678/abcdefTOKENghijkl"
TEAMS_PATH = "/workflows/0123abcd/triggers/manual/paths/invoke"


SLACK_DEAD = Reply(404, body=b"no_service")
SLACK_ARCHIVED = Reply(410, body=b"channel_is_archived")
DISCORD_UNKNOWN = Reply(
    404, {"Content-Type": "application/json"}, b'{"message": "Unknown Webhook", "code": 10015}'
)


def _json(received: Received) -> Any:
    if not received.headers.get("content-type", "").startswith("application/json"):
        raise ValueError("content type")
    return json.loads(received.body.decode("utf-8"))  # raises on bad UTF-8 too


def slack_rules(received: Received) -> Reply | None:
    try:
        document = _json(received)
    except ValueError:
        return Reply(400, body=b"invalid_payload")
    if not isinstance(document, dict):
        return Reply(400, body=b"invalid_payload")
    if not any(document.get(name) for name in ("text", "blocks", "attachments")):
        return Reply(400, body=b"no_text")
    for block in document.get("blocks") or []:
        text = (block.get("text") or {}).get("text", "") if isinstance(block, dict) else None
        if not isinstance(block, dict) or "type" not in block or len(text) > 3000:
            return Reply(400, body=b"invalid_blocks")
    return None


DISCORD_LIMITS = {"title": 256, "description": 4096, "footer": 2048, "name": 256, "value": 1024}


def discord_rules(received: Received) -> Reply | None:
    def bad(code: int, message: str) -> Reply:
        return Reply(
            400, {"Content-Type": "application/json"}, json.dumps({"code": code, "message": message}).encode()
        )

    try:
        document = _json(received)
    except ValueError:
        return bad(50109, "The request body contains invalid JSON.")
    if not isinstance(document, dict):
        return bad(50109, "The request body contains invalid JSON.")
    content, embeds = document.get("content") or "", document.get("embeds") or []
    if not content and not embeds:
        return bad(50006, "Cannot send an empty message")
    if len(content) > 2000 or len(embeds) > 10:
        return bad(50035, "Invalid Form Body")
    total = 0
    for embed in embeds:
        fields = embed.get("fields") or []
        footer = (embed.get("footer") or {}).get("text", "")
        parts = [
            ("title", embed.get("title", "")),
            ("description", embed.get("description", "")),
            ("footer", footer),
        ]
        parts += [("name", field.get("name", "")) for field in fields]
        parts += [("value", field.get("value", "")) for field in fields]
        if len(fields) > 25 or any(not field.get("name") or not field.get("value") for field in fields):
            return bad(50035, "Invalid Form Body")
        for kind, text in parts:
            if len(text) > DISCORD_LIMITS[kind]:
                return bad(50035, f"Invalid Form Body ({kind})")
            total += len(text)
    if total > 6000:
        return bad(50035, "Invalid Form Body (embed size)")
    return None


def teams_rules(received: Received) -> Reply | None:
    try:
        document = _json(received)
    except ValueError:
        return Reply(400, body=b"Bad Request: body is not JSON")
    attachments = document.get("attachments") if isinstance(document, dict) else None
    if document.get("type") != "message" or not isinstance(attachments, list) or not attachments:
        return Reply(400, body=b"Bad Request: expected a message with attachments")
    for attachment in attachments:
        card = attachment.get("content") if isinstance(attachment, dict) else None
        if (
            attachment.get("contentType") != "application/vnd.microsoft.card.adaptive"
            or not isinstance(card, dict)
            or card.get("type") != "AdaptiveCard"
            or not card.get("version")
            or not isinstance(card.get("body"), list)
            or not card["body"]
            or any(not isinstance(element, dict) or "type" not in element for element in card["body"])
        ):
            return Reply(400, body=b"Bad Request: the attachment is no Adaptive Card")
    return None


class ChatReceiver(Receiver):
    """A Receiver that first applies its service's rules; queued replies answer valid bodies
    (429s, dead hooks), and a valid body with nothing queued gets ``accepted``."""

    def __init__(
        self, rules: Callable[[Received], Reply | None], accepted: Reply, path: str, unknown: Reply
    ) -> None:
        super().__init__()
        self.rules, self.path, self.unknown = rules, path, unknown
        self.default = accepted
        self.accepted: list[Any] = []  # the JSON of every body the rules let through

    @property
    def url(self) -> str:
        return self.url_for(path=self.path)

    def _record(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            if received.path != self.path:
                return self.unknown
            refused = self.rules(received)
            if refused is not None:
                return refused
            reply = self.replies.pop(0) if self.replies else self.default
            if 200 <= reply.status < 300:
                self.accepted.append(json.loads(received.body))
            return reply


def slack_receiver() -> ChatReceiver:
    return ChatReceiver(slack_rules, Reply(200, body=b"ok"), SLACK_PATH, SLACK_DEAD)


def discord_receiver() -> ChatReceiver:
    return ChatReceiver(discord_rules, Reply(204, body=b""), DISCORD_PATH, DISCORD_UNKNOWN)


def teams_receiver() -> ChatReceiver:
    return ChatReceiver(teams_rules, Reply(202, body=b""), TEAMS_PATH, Reply(404, body=b"Not Found"))
