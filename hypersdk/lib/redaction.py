"""The one way secrets beside secrets are shown: masked.

A URL's ``user:password@`` and its query values (receivers put tokens there), and every custom
header value (``Authorization: Bearer ...``), are replaced by ``***`` wherever a stored
webhook is shown — the API (viewers and operators alike), ``hyperctl``, the dashboard, the
admin. Only the answer to the request that created it echoes what was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

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
    segments = unquote(path).strip("/").split("/") if path.strip("/") else []
    shown = len(segments) if public_segments is None else min(public_segments, len(segments))
    # Whatever the format, a path segment that looks like a token hides itself and all after it.
    shown = next((i for i, segment in enumerate(segments[:shown]) if looks_like_token(segment)), shown)
    if shown < len(segments) or (public_segments is not None and not segments):
        path = "/" + "/".join([*(quote(s) for s in segments[:shown]), ELLIPSIS])
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def looks_like_token(segment: str) -> bool:
    """A URL path segment that is likely a secret: 16+ characters mixing letters and digits
    (Slack's, Discord's tokens), or 32+ characters of anything. Short words, numeric ids (a
    Discord webhook id) and version numbers are not."""
    if len(segment) >= 32:
        return True
    return len(segment) >= 16 and any(c.isalpha() for c in segment) and any(c.isdigit() for c in segment)


def scrub(text: str, secrets: list[str], shown: str) -> str:
    """``text`` with every secret in ``secrets`` (a URL, its path) replaced by ``shown``."""
    for secret in sorted((s for s in secrets if s and len(s) > 1), key=len, reverse=True):
        text = text.replace(secret, shown)
    return text


def url_secrets(
    url: str, public_segments: int | None = None, headers: Mapping[str, str] | None = None
) -> list[str]:
    """Every secret part of a webhook URL, as given and percent-decoded/encoded: its
    ``user:password``, each query value (Teams' ``sig=``), the path segments past
    ``public_segments`` (a chat URL), and the values of its custom ``headers``. Parts shorter
    than 4 characters (``api-version=1``) are left out: replacing them would garble any text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    return _variants(_url_secret_parts(parts, public_segments, headers))


def _url_secret_parts(parts, public_segments, headers) -> list[str]:  # noqa: ANN001
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found += [userinfo, *userinfo.split(":", 1)]
    for pair in parts.query.split("&"):
        found.append(pair.partition("=")[2])
    if public_segments is not None:
        found += parts.path.strip("/").split("/")[public_segments:]
    found += [str(value) for value in (headers or {}).values()]
    return found


def _variants(found: list[str]) -> list[str]:
    variants = {variant for part in found for variant in (part, unquote(part), quote(unquote(part), safe=""))}
    return sorted((v for v in variants if len(v) >= 4), key=len, reverse=True)


def scrub_url_secrets(
    text: str,
    url: str,
    shown: str,
    public_segments: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """``text`` (a receiver's answer, an error) safe to store and show: the whole ``url`` becomes
    ``shown`` (its masked form), then every part ``url_secrets`` names becomes ``***``. The one
    function every stored or shown text about a webhook goes through."""
    text = scrub(text, [url, unquote(url)], shown)
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    if public_segments is not None:  # a chat URL's secret path segments read "…", as in the URL shown
        text = scrub(text, _variants(parts.path.strip("/").split("/")[public_segments:]), ELLIPSIS)
    return scrub(text, url_secrets(url, public_segments, headers), MASK)


def mask_headers(headers: Mapping[str, object]) -> dict[str, str]:
    """Header names as given, every value ``***``."""
    return {name: MASK for name in headers}
