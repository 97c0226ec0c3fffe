"""Webhook settings with their defaults, checked strictly (``manage.py check`` reports a bad one)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from hypersdk.lib.public_addresses import Network, parse_networks_cached

DEFAULT_RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000)  # 5 s, 5 min, 30 min, 2 h, 5 h, 10 h
PROGRESS_INTERVAL = 10.0  # job.progress: at most one per job in this many seconds, plus each 10 % step


def timeout() -> float:
    value = _number("HYPERSDK_WEBHOOK_TIMEOUT", 10)
    if value <= 0:
        raise ImproperlyConfigured(f"HYPERSDK_WEBHOOK_TIMEOUT must be > 0, got {value}")
    return value


def allowed_networks() -> tuple[str, ...]:
    return tuple(getattr(settings, "HYPERSDK_WEBHOOK_ALLOWED_NETWORKS", ()))


def networks() -> tuple[Network, ...]:
    try:
        return parse_networks_cached(allowed_networks())
    except ValueError as exc:
        raise ImproperlyConfigured(f"HYPERSDK_WEBHOOK_ALLOWED_NETWORKS: {exc}") from None


def retry_delays() -> tuple[float, ...]:
    """Seconds to wait before each retry; a delivery gets ``1 + len(retry_delays())`` attempts."""
    raw = getattr(settings, "HYPERSDK_WEBHOOK_RETRY_DELAYS", DEFAULT_RETRY_DELAYS)
    try:
        delays = tuple(float(value) for value in raw)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"HYPERSDK_WEBHOOK_RETRY_DELAYS must be seconds, got {raw!r}") from None
    if any(delay < 0 for delay in delays):
        raise ImproperlyConfigured(f"HYPERSDK_WEBHOOK_RETRY_DELAYS must not be negative, got {raw!r}")
    return delays


def disable_after_failures() -> int:
    return int(_number("HYPERSDK_WEBHOOK_DISABLE_AFTER_FAILURES", 20))


def disable_after() -> timedelta:
    return timedelta(hours=_number("HYPERSDK_WEBHOOK_DISABLE_AFTER_HOURS", 24))


def drainers() -> int:
    """How many drainer tasks may send webhooks at once (each takes a worker process)."""
    value = int(_number("HYPERSDK_WEBHOOK_DRAINERS", 2))
    if value < 1:
        raise ImproperlyConfigured(f"HYPERSDK_WEBHOOK_DRAINERS must be >= 1, got {value}")
    return value


def worker_concurrency() -> int:
    """Processes of hypervisord's webhook worker: one per drainer, one for retries and the sweep."""
    return drainers() + 1


def check() -> list[str]:
    """Every problem with the webhook settings, as messages."""
    problems = []
    for getter in (timeout, networks, retry_delays, disable_after_failures, disable_after, drainers):
        try:
            getter()
        except ImproperlyConfigured as exc:
            problems.append(str(exc))
    return problems


def _number(name: str, default: float) -> float:
    raw = getattr(settings, name, default)
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
