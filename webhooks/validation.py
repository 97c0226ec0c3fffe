"""What a webhook may be: its URL (resolved and checked against the allowed networks), its
events, its custom headers and its format; bad input raises ``InvalidWebhook`` naming the field."""

from __future__ import annotations

import re
from typing import Any

from hypersdk.lib import outbound_http
from hypersdk.lib.errors import InvalidInput
from webhooks import conf, formats
from webhooks.models import ALL_EVENTS, DEFAULT_EVENTS, EVENTS

# Set by HyperSDK on every request; a custom header may not replace them.
RESERVED_HEADERS = {
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
MAX_URL_LENGTH = 2048
# ASCII that RFC 3986 allows nowhere in a URI (controls, space, "<>\^`{|}), and a "%" that is
# not a percent-encoding. Beyond ASCII is allowed: an IRI (RFC 3987), which httpx encodes.
_NOT_IN_A_URI = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]|%(?![0-9A-Fa-f]{2})')
# Custom headers: every delivery carries them, stored encrypted and masked in every listing.
MAX_HEADERS = 32
MAX_HEADER_NAME_BYTES = 256
MAX_HEADER_VALUE_BYTES = 4096


class InvalidWebhook(InvalidInput):
    """Bad input, on one field: ``field`` names it for the API's 400 body."""


def clean(url: Any, events: Any = None, headers: Any = None) -> tuple[str, list[str], dict[str, str]]:
    """Check a webhook's URL (resolving its host), events and headers; raise InvalidWebhook."""
    return clean_url(url), clean_events(events), clean_headers(headers)


def clean_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidWebhook("url", "a URL is required")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhook("url", f"longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = outbound_http.check_url(url)
    except outbound_http.RefusedDestination as exc:
        raise InvalidWebhook("url", str(exc)) from None
    if bad := _NOT_IN_A_URI.search(url):
        why = "'%' must start a percent-encoding like %20" if bad.group() == "%" else f"{bad.group()!r} is"
        raise InvalidWebhook("url", f"not a valid URL: {why} not allowed in a URL (RFC 3986)")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise InvalidWebhook("url", f"not a valid URL: port {parsed.port} is not between 1 and 65535")
    if "%" in parsed.host:  # a percent-encoded host names nothing DNS or an address can
        raise InvalidWebhook("url", "not a valid URL: a host name is never percent-encoded")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        outbound_http.check_address(parsed.host, port, conf.networks(), timeout=conf.timeout())
    except outbound_http.RefusedDestination as exc:
        raise InvalidWebhook("url", str(exc)) from None
    except outbound_http.OutboundError:
        # Not resolvable now (DNS down, a name only the receivers' network knows): every
        # delivery checks the address again when it connects.
        pass
    return url


def clean_events(events: Any) -> list[str]:
    if events is None or events == [] or events == "":
        return list(DEFAULT_EVENTS)
    if isinstance(events, str):
        events = events.replace(",", " ").split()
    if not isinstance(events, list | tuple) or not all(isinstance(event, str) for event in events):
        raise InvalidWebhook("events", "a list of event names")
    unknown = [event for event in events if event not in (*EVENTS, ALL_EVENTS)]
    if unknown:
        raise InvalidWebhook(
            "events", f"unknown event {unknown[0]!r}: choose from {', '.join(EVENTS)}, or * for all"
        )
    if ALL_EVENTS in events:
        return [ALL_EVENTS]
    return list(dict.fromkeys(events))


def clean_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise InvalidWebhook("headers", "an object of header names to values")
    if len(headers) > MAX_HEADERS:
        raise InvalidWebhook("headers", f"at most {MAX_HEADERS} headers, not {len(headers)}")
    cleaned = {}
    for name, value in headers.items():
        if isinstance(name, str) and len(name.encode("utf-8", "replace")) > MAX_HEADER_NAME_BYTES:
            raise InvalidWebhook("headers", f"a header name is longer than {MAX_HEADER_NAME_BYTES} bytes")
        # fullmatch: the pattern's "$" also matches before a trailing newline.
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise InvalidWebhook("headers", f"{name!r} is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidWebhook("headers", f"{name} is set by HyperSDK and cannot be replaced")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidWebhook("headers", f"the value of {name} must be a string")
        value = str(value)
        if len(value.encode("utf-8", "replace")) > MAX_HEADER_VALUE_BYTES:
            raise InvalidWebhook(
                "headers", f"the value of {name} is longer than {MAX_HEADER_VALUE_BYTES} bytes"
            )
        if any(char in value for char in "\r\n\0"):
            raise InvalidWebhook("headers", f"the value of {name} contains a line break")
        cleaned[name] = value
    return cleaned


def clean_format(fmt: Any, url: str) -> str:
    """One of standard, slack, discord, teams; empty or None: inferred from the URL."""
    if fmt is None or fmt == "":
        return formats.infer(url)
    if not isinstance(fmt, str) or fmt.strip().lower() not in formats.FORMATS:
        raise InvalidWebhook("format", f"unknown format {fmt!r}: choose from {', '.join(formats.FORMATS)}")
    return fmt.strip().lower()
