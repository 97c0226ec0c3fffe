"""The one way secrets beside secrets are shown: masked.

A URL's ``user:password@`` and its query values (receivers put tokens there), and every custom
header value (``Authorization: Bearer ...``), are replaced by ``***`` wherever a stored
webhook is shown — the API (viewers and operators alike), ``hyperctl``, the dashboard, the
admin. Only the answer to the request that created it echoes what was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
ELLIPSIS = "…"  # where the secret part of a chat URL's path was


def url_has_credentials(url: str) -> bool:
    """True if ``url`` carries ``user[:password]@``."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return "@" in url


def mask_url(url: str, public_segments: int | None = None) -> str:
    """``https://u:p@host/x?token=t`` -> ``https://***@host/x?token=***``; the rest unchanged.

    ``public_segments``: the URL's path is itself a secret (a chat service's webhook URL): keep
    that many leading segments and show the rest as "…"
    (``https://hooks.slack.com/services/T000/…``)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable: show nothing of it that could be a secret
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        query = urlencode([(name, MASK) for name, _ in parse_qsl(query, keep_blank_values=True)], safe="*")
    path = parts.path
    if public_segments is not None:
        segments = path.strip("/").split("/")
        if len(segments) > public_segments or not path.strip("/"):
            path = "/" + "/".join([*segments[:public_segments], ELLIPSIS])
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def scrub(text: str, secrets: list[str], shown: str) -> str:
    """``text`` with every secret in ``secrets`` (a URL, its path) replaced by ``shown``."""
    for secret in sorted((s for s in secrets if s and len(s) > 1), key=len, reverse=True):
        text = text.replace(secret, shown)
    return text


def mask_headers(headers: Mapping[str, object]) -> dict[str, str]:
    """Header names as given, every value ``***``."""
    return {name: MASK for name in headers}
