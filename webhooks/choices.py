"""What a webhook may be set to, importable without Django (``hyperctl webhooks add`` offers
these before the ORM loads)."""

from __future__ import annotations

from hypersdk.lib import events as hypersdk_events

# The body formats: standard (signed JSON) and the chat services'.
STANDARD, SLACK, DISCORD, TEAMS = "standard", "slack", "discord", "teams"
FORMATS = (STANDARD, SLACK, DISCORD, TEAMS)
CHAT_FORMATS = (SLACK, DISCORD, TEAMS)

# What a webhook may subscribe to; "*" is every one of them.
EVENTS = hypersdk_events.EVENTS  # every event the bus emits can be subscribed to
ALL_EVENTS = "*"
DEFAULT_EVENTS = ["job.started", "job.completed", "job.failed"]
