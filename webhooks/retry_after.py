"""How long a receiver asked us to wait: ``Retry-After`` (RFC 9110 §10.2.3) and the chat
services' own rate-limit answers, as a delay capped at ``MAX_RETRY_AFTER``."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER = timedelta(days=1)
# RFC 9110 §5.6.7: IMF-fixdate is preferred; recipients must also take the obsolete RFC 850
# and ANSI C asctime() forms. All three mean UTC.
HTTP_DATE_FORMATS = (
    "%a, %d %b %Y %H:%M:%S GMT",  # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    "%A, %d-%b-%y %H:%M:%S GMT",  # RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    "%a %b %d %H:%M:%S %Y",  # asctime: Sun Nov  6 08:49:37 1994 (day padded with a space)
)
_unreadable_logged: set[str] = set()
# Longer delay-seconds (more than ~31,000 years) is no real request; int() of thousands of
# digits raises ValueError (Python's 4,300-digit limit), so such a value is "unreadable".
MAX_DELAY_DIGITS = 12


def retry_after_of(status_code: int, headers: Any, text: str) -> timedelta | None:
    """How long the receiver asked us to wait: its ``Retry-After`` header, or for a 429 without
    one Discord's JSON ``retry_after`` (seconds, a float) or ``X-RateLimit-Reset-After``."""
    header = headers.get("retry-after")
    if header:
        return parse_retry_after(header)
    if status_code != 429:
        return None
    try:
        document = json.loads(text)
        seconds = float(document["retry_after"]) if isinstance(document, dict) else None
    except (ValueError, KeyError, TypeError):
        seconds = None
    if seconds is None:
        try:
            seconds = float(headers.get("x-ratelimit-reset-after") or "")
        except ValueError:
            return None
    if seconds != seconds or seconds < 0:  # NaN or negative: not a delay
        return None
    return timedelta(seconds=min(seconds, MAX_RETRY_AFTER.total_seconds()))


def parse_http_date(value: str) -> datetime | None:
    """An HTTP-date in any of its three forms, as an aware UTC datetime; None if it is none."""
    text = " ".join(value.split())  # asctime pads the day with a space: "Nov  6"
    for form in HTTP_DATE_FORMATS:
        try:
            moment = datetime.strptime(text, form)
        except ValueError:
            continue
        if form.startswith("%A"):
            # RFC 9110: a two-digit year more than 50 years in the future is in the past century.
            # (strptime's %y maps 69-99 to 19xx and 00-68 to 20xx.)
            current = timezone.now().year
            if moment.year > current + 50:
                moment = moment.replace(year=moment.year - 100)
        return moment.replace(tzinfo=UTC)
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """``Retry-After`` (RFC 9110 §10.2.3) as a delay: delay-seconds or an HTTP-date in any of its
    three forms; a date in the past means now. None when absent or unreadable (the caller then
    keeps its own schedule); an unreadable value is logged once per value."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= MAX_DELAY_DIGITS:
        return timedelta(seconds=min(int(value), int(MAX_RETRY_AFTER.total_seconds())))
    moment = parse_http_date(value)
    if moment is None:
        key = value[:100]  # a hostile header can be megabytes long: remember only its start
        if key not in _unreadable_logged and len(_unreadable_logged) < 1000:
            _unreadable_logged.add(key)
            logger.warning("unreadable Retry-After %r: the retry schedule applies", value[:100])
        return None
    return max(timedelta(0), moment - (now or timezone.now()))
