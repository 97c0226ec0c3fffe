"""Counting what happens, in the database: job lifecycle events, bytes and durations of
exports, webhook delivery attempts. ``metrics.collector`` turns the rows into Prometheus text.

Every increment is one conditional ``UPDATE ... SET value = value + n``: workers on several
machines add to the same row without losing a count.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from prometheus_client.utils import floatToGoString

from metrics.models import MetricCounter

logger = logging.getLogger(__name__)

EXPORTS_STARTED = "hypersdk_exports_started_total"
EXPORTS_COMPLETED = "hypersdk_exports_completed_total"
EXPORTS_FAILED = "hypersdk_exports_failed_total"
EXPORTS_CANCELLED = "hypersdk_exports_cancelled_total"
EXPORTED_BYTES = "hypersdk_exported_bytes_total"
EXPORT_DURATION = "hypersdk_export_duration_seconds"
WEBHOOK_DELIVERIES = "hypersdk_webhook_deliveries_total"

# Exports take from seconds (a small disk) to many hours (terabytes over a slow link).
DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)

EVENT_COUNTERS = {
    "job.started": EXPORTS_STARTED,
    "job.completed": EXPORTS_COMPLETED,
    "job.failed": EXPORTS_FAILED,
    "job.cancelled": EXPORTS_CANCELLED,
}

# A delivery attempt's outcome, from the delivery's status once the attempt is recorded.
WEBHOOK_OUTCOMES = {"delivered": "delivered", "pending": "retrying", "failed": "failed"}


def label_key(labels: Mapping[str, str] | None = None) -> str:
    return json.dumps(dict(labels or {}), sort_keys=True, separators=(",", ":"))


def increment(name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None) -> None:
    """Add ``amount`` to the counter row ``name{labels}``, creating it on first use."""
    _increment_many(name, [label_key(labels)], amount)


def observe(name: str, value: float, buckets: tuple[float, ...] = DURATION_BUCKETS) -> None:
    """Record one observation of a histogram as counter rows: cumulative buckets, count, sum."""
    bounds = [*buckets, math.inf]
    _increment_many(f"{name}_bucket", [label_key({"le": floatToGoString(b)}) for b in bounds if value <= b])
    increment(f"{name}_sum", value)
    increment(f"{name}_count")  # last: a reader that sees the count sees the whole observation


def _increment_many(name: str, keys: list[str], amount: float = 1.0) -> None:
    if not keys:
        return
    # Rows are never deleted, so a row seen here is still there for the UPDATE below.
    existing = set(MetricCounter.objects.filter(name=name, labels__in=keys).values_list("labels", flat=True))
    for key in keys:
        if key in existing:
            continue
        try:
            with transaction.atomic():
                MetricCounter.objects.create(name=name, labels=key, value=amount)
        except IntegrityError:  # another process created it meanwhile: add to theirs
            MetricCounter.objects.filter(name=name, labels=key).update(value=F("value") + amount)
    if existing:
        MetricCounter.objects.filter(name=name, labels__in=existing).update(value=F("value") + amount)


# ---- feeds ----------------------------------------------------------------------------------


def on_event(event: str, data: dict[str, Any]) -> None:
    """The event-bus subscriber: count job starts and endings; bytes and duration on success."""
    counter = EVENT_COUNTERS.get(event)
    if counter is None:
        return
    increment(counter)
    if event == "job.completed":
        record_completed_export(data)


def record_completed_export(event: dict[str, Any]) -> None:
    """Bytes and duration of a completed export, from its ``job.completed`` event (Job.as_event)."""
    from exports.models import exported_bytes

    exported = exported_bytes(event)
    if exported:
        increment(EXPORTED_BYTES, float(exported))
    started, finished = event.get("started_at"), event.get("finished_at")
    if started and finished:
        elapsed = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
        observe(EXPORT_DURATION, max(0.0, elapsed.total_seconds()))


def on_webhook_attempt(sender: Any, status: str, **kwargs: Any) -> None:
    """``webhooks.signals.delivery_attempted`` receiver."""
    record_webhook_attempt(status)


def record_webhook_attempt(status: str) -> None:
    """Count one webhook delivery attempt by the delivery's status once it was recorded."""
    try:
        increment(WEBHOOK_DELIVERIES, labels={"outcome": WEBHOOK_OUTCOMES.get(status, status)})
    except Exception:  # noqa: BLE001 - a lost count must never stop the drainer's other deliveries
        logger.exception("cannot count a webhook delivery attempt")
