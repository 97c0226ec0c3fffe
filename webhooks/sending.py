"""One POST of a delivery's body to its receiver, and how it went (``Attempt``).

Signs the body for the ``standard`` format, turns ``user:pass@`` into HTTP Basic, and scrubs
every secret of the URL and headers out of the error and the receiver's answer.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

from django.utils import timezone

from hypersdk.lib import outbound_http, redaction
from webhooks import conf, formats, retry_after, signing
from webhooks.models import Webhook

EXCERPT_CHARS = 1000


@dataclass(frozen=True)
class Attempt:
    """How one POST went."""

    status_code: int | None
    duration_ms: float
    error: str = ""
    response_excerpt: str = ""
    retry_after: timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """``http://user:pass@host/x`` -> (``http://host/x``, an HTTP Basic Authorization header);
    a custom Authorization header of the webhook wins over it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return bare, {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


def send(webhook: Webhook, message_id: str, body: bytes) -> Attempt:
    """POST the body to the webhook once (signed when its format is ``standard``); never raises
    for the receiver's sake, and never puts the webhook's URL in an error."""
    try:
        secret = webhook.secret if webhook.signed else ""
        target_url, target_headers = webhook.target_url, webhook.target_headers
    except ValueError as exc:  # HYPERSDK_SECRET_KEY changed: no signature can be made
        return Attempt(
            status_code=None, duration_ms=0.0, error=str(exc).replace("password", "signing secret")
        )
    target_url, basic_auth = _split_userinfo(target_url)
    if any(name.lower() == "authorization" for name in target_headers):
        basic_auth = {}
    timestamp = int(timezone.now().timestamp())
    headers = {
        **basic_auth,
        **target_headers,
        "Content-Type": "application/json" if webhook.signed else "application/json; charset=utf-8",
        "User-Agent": "HyperSDK-Webhooks/1",
        **(signing.signed_headers(secret, message_id, timestamp, body) if webhook.signed else {}),
    }
    attempt = _post(target_url, body, headers)
    # An error text (a redirect's Location, a library's message) or a receiver's answer echoing
    # what it got (Teams' "bad sig=...") must not show any secret of the URL or the headers.
    public = formats.PUBLIC_PATH_SEGMENTS.get(webhook.format)
    if public is None:  # stored as a chat URL (its host says so): its path is as secret
        public = formats.PUBLIC_PATH_SEGMENTS.get(formats.infer(webhook.target_url))
    shown_path = urlsplit(webhook.url).path
    if public is None and shown_path.endswith("/" + redaction.ELLIPSIS):  # masked once, stays masked
        public = len(shown_path.strip("/").split("/")) - 1

    def clean(text: str) -> str:
        for url in (webhook.target_url, target_url):
            text = redaction.scrub_url_secrets(text, url, webhook.url, public, webhook.target_headers)
        return text

    return replace(attempt, error=clean(attempt.error), response_excerpt=clean(attempt.response_excerpt))


def _post(target_url: str, body: bytes, headers: dict[str, str]) -> Attempt:
    timeout = conf.timeout()
    started = time.monotonic()
    try:
        response = outbound_http.post(
            target_url,
            content=body,
            headers=headers,
            timeout=timeout,
            allowed_networks=conf.allowed_networks(),
        )
    except outbound_http.OutboundError as exc:
        elapsed = (time.monotonic() - started) * 1000
        return Attempt(status_code=None, duration_ms=round(elapsed, 1), error=str(exc))
    text = response.body.decode("utf-8", errors="replace")
    excerpt = text[:EXCERPT_CHARS]
    error = ""
    if 300 <= response.status_code < 400:
        error = f"redirect to {redaction.mask_url(response.headers.get('location', '?'), 0)} not followed"
    elif not response.ok:
        error = f"HTTP {response.status_code}"
        # A 4xx says what is wrong with our request (Slack's "no_text"): worth showing.
        answer = text.strip().splitlines()[0][:200] if text.strip() else ""
        if answer and 400 <= response.status_code < 500:
            error += f": {answer}"
    return Attempt(
        status_code=response.status_code,
        duration_ms=round(response.elapsed * 1000, 1),
        error=error,
        response_excerpt=excerpt,
        retry_after=retry_after.retry_after_of(response.status_code, response.headers, text),
    )
