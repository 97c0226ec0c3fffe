"""What each kind of receiver is sent: the signed Standard Webhooks envelope, or a short human
message for a chat service (Slack incoming webhooks, Discord webhooks, Teams workflows).

``render(fmt, event, data)`` takes an event's receiver-facing ``data`` (webhooks.payloads) and
returns the exact body as a string. Chat messages say what happened, to which VM, the job id,
the duration and size or the error, and link to the job's dashboard page when
``HYPERSDK_PUBLIC_URL`` is set. Every text is cut to the service's documented limits.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

from exports.models import exported_bytes
from hypersdk.lib.units import human_size
from webhooks.choices import CHAT_FORMATS as CHAT_FORMATS
from webhooks.choices import DISCORD, SLACK, STANDARD, TEAMS
from webhooks.choices import FORMATS as FORMATS

# Discord's documented limits (characters).
DISCORD_CONTENT = 2000
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_FIELDS = 25
DISCORD_FIELD_NAME = 256
DISCORD_FIELD_VALUE = 1024
DISCORD_FOOTER = 2048
DISCORD_EMBED_TOTAL = 6000
# Slack: a section block's text is at most 3,000 characters; `text` is cut by Slack at 40,000.
SLACK_SECTION = 3000
# Errors are shown in full up to this many characters everywhere (a phone screen or two).
ERROR_CHARS = 1500

ZERO_WIDTH_JOINER = "\u200d"
ELLIPSIS = "…"


def infer(url: str) -> str:
    """The format a receiver's URL calls for: slack, discord, teams, else standard."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")  # "hooks.slack.com." is the same host
    except ValueError:
        return STANDARD
    path = unquote(parts.path).lower()  # "%2F" is a "/" to the receiver
    if host == "hooks.slack.com":
        return SLACK
    if host in {"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"} and (
        path.startswith("/api/webhooks/") or "/webhooks/" in path
    ):
        return DISCORD
    # Teams incoming webhooks (*.webhook.office.com, outlook.office.com/webhook) and the Power
    # Automate workflows that replace them (*.logic.azure.com/workflows/..., and the newer
    # *.environment.api.powerplatform.com/.../workflows/...).
    if host.endswith(".webhook.office.com") or (
        host in {"outlook.office.com", "outlook.office365.com"} and path.startswith("/webhook")
    ):
        return TEAMS
    if (
        host.endswith(".logic.azure.com") or host.endswith(".api.powerplatform.com")
    ) and "/workflows/" in path:
        return TEAMS
    return STANDARD


# How many leading path segments of a chat URL are not secret (the rest is shown as "…").
PUBLIC_PATH_SEGMENTS = {SLACK: 2, DISCORD: 3, TEAMS: 1}


def truncate(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, ending in "…" when cut.

    Cuts between code points (so never inside a UTF-8 sequence) and backs off over combining
    marks, variation selectors and zero-width joiners so a grapheme is not split either."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = limit - len(ELLIPSIS)
    # Back off while the character after the cut belongs to the one before it (a mark, a
    # modifier, a joiner) or the one before it joins on to the next (ZWJ emoji sequences).
    while 0 < cut < len(text) and (_continues_grapheme(text[cut]) or text[cut - 1] == ZERO_WIDTH_JOINER):
        cut -= 1
    # A regional-indicator flag is two code points: never keep half of one.
    flags = 0
    while cut - flags > 0 and _is_regional_indicator(text[cut - 1 - flags]):
        flags += 1
    if flags % 2:
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def _continues_grapheme(char: str) -> bool:
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in {"Mn", "Me", "Mc"}
        or char == ZERO_WIDTH_JOINER
        or "\ufe00" <= char <= "\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin-tone modifiers
    )


def _is_regional_indicator(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


# ---- what a message says --------------------------------------------------------------------

HEADLINES = {
    "job.started": ("Export started", "▶️"),
    "job.completed": ("Export completed", "✅"),
    "job.failed": ("Export failed", "❌"),
    "job.cancelled": ("Export cancelled", "⏹️"),
    "job.progress": ("Export progress", "⏳"),
    "schedule.triggered": ("Schedule triggered", "🕑"),
    "test": ("Test notification from HyperSDK", "🔔"),
}
COLOURS = {"job.completed": 0x2EB67D, "job.failed": 0xE01E5A, "job.cancelled": 0x9E9E9E}


def job_link(job_id: str | None) -> str:
    """The job's dashboard page, when HYPERSDK_PUBLIC_URL says where users reach us."""
    base = str(getattr(settings, "HYPERSDK_PUBLIC_URL", "") or "").rstrip("/")
    return f"{base}/ui/jobs/{job_id}/" if base and job_id else ""


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def size_text(count: float | None) -> str:
    """A size for a chat line; nothing when the job moved no bytes."""
    return human_size(count) if count else ""


def facts(event: str, data: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs worth a glance; never a credential (Job.as_event has none)."""
    if event == "test":
        return [("Sent by", "HyperSDK: this webhook works")]
    if event == "schedule.triggered":
        schedule = data.get("schedule") or {}
        return [
            ("Schedule", str(schedule.get("name") or schedule.get("id") or "?")),
            ("Job", str(data.get("job_id") or "?")),
        ]
    rows = [
        ("VM", str(data.get("vm_path") or data.get("name") or "?")),
        ("Job", str(data.get("job_id") or "?")),
    ]
    progress = data.get("progress") or {}
    if event == "job.progress":
        percent = progress.get("percent")
        if percent is not None:
            rows.append(("Progress", f"{float(percent):.0f}% ({progress.get('phase') or 'running'})"))
    duration = human_duration(data.get("duration")) if event != "job.started" else ""
    if duration:
        rows.append(("Duration", duration))
    if event == "job.completed":
        size = size_text(exported_bytes(data))
        if size:
            rows.append(("Size", size))
        if data.get("output"):
            rows.append(("Output", str(data["output"])))
    if event in {"job.failed", "job.cancelled"} and data.get("error"):
        rows.append(("Error", truncate(str(data["error"]), ERROR_CHARS)))
    return rows


def summary(event: str, data: dict[str, Any]) -> str:
    """One line: what happened, to which VM or schedule."""
    title, icon = HEADLINES.get(event, (event, "•"))
    if event == "test":
        return f"{icon} {title}"
    if event == "schedule.triggered":
        schedule = data.get("schedule") or {}
        return f"{icon} {title}: {schedule.get('name') or schedule.get('id') or '?'}"
    name = data.get("name") or data.get("vm_path") or data.get("job_id") or "?"
    return f"{icon} {title}: {name}"


# ---- per service ----------------------------------------------------------------------------


def render(fmt: str, event: str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON document for a chat format (``standard`` is built by webhooks.payloads)."""
    if fmt == SLACK:
        return slack(event, data)
    if fmt == DISCORD:
        return discord(event, data)
    if fmt == TEAMS:
        return teams(event, data)
    raise ValueError(f"not a chat format: {fmt!r}")


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn control characters; nothing else needs escaping.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """``text`` (the notification and fallback) plus Block Kit ``blocks``."""
    head = summary(event, data)
    rows = facts(event, data)
    link = job_link(data.get("job_id"))
    lines = [f"*{_slack_escape(head)}*"]
    lines += [f"*{_slack_escape(label)}:* {_slack_escape(value)}" for label, value in rows]
    if link:
        lines.append(f"<{link}|Open the job in the dashboard>")
    text = truncate("\n".join(lines), SLACK_SECTION)
    return {
        "text": truncate(_slack_escape(head), SLACK_SECTION),
        # verbatim: Slack must not turn "@here", "@channel" or a bare URL in a VM name or an
        # error into a mention or a link; only our own escaped <link|label> renders.
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}],
    }


def discord(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """``content`` plus one embed, every part within Discord's limits; mentions never ping."""
    head = summary(event, data)
    rows = facts(event, data)[:DISCORD_FIELDS]
    embed: dict[str, Any] = {"title": truncate(head, DISCORD_TITLE)}
    link = job_link(data.get("job_id"))
    if link:
        embed["url"] = link
    if event in COLOURS:
        embed["color"] = COLOURS[event]
    fields = []
    for label, value in rows:
        fields.append(
            {
                "name": truncate(label, DISCORD_FIELD_NAME),
                "value": truncate(value or "-", DISCORD_FIELD_VALUE),
                "inline": label not in {"Error", "Output", "VM"},
            }
        )
    embed["fields"] = fields
    embed["footer"] = {"text": truncate("HyperSDK", DISCORD_FOOTER)}
    excess = _embed_chars(embed) - DISCORD_EMBED_TOTAL
    if excess > 0 and fields:  # only with many long facts: shorten the longest value
        longest = max(fields, key=lambda field: len(field["value"]))
        longest["value"] = truncate(longest["value"], max(1, len(longest["value"]) - excess))
    return {
        "content": truncate(head, DISCORD_CONTENT),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},  # an error text with @everyone must not ping anyone
    }


def _embed_chars(embed: dict[str, Any]) -> int:
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
        + len(embed.get("footer", {}).get("text", ""))
    )


def teams(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """A message with one Adaptive Card attachment, as Teams workflow webhooks take it."""
    head = summary(event, data)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": head, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    rows = facts(event, data)
    if rows:
        body.append({"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in rows]})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    link = job_link(data.get("job_id"))
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the job", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def body(fmt: str, event: str, data: dict[str, Any]) -> str:
    """The exact body for a chat format, UTF-8 JSON text."""
    return json.dumps(render(fmt, event, data), ensure_ascii=False, separators=(",", ":"))
