"""The Prometheus collector of ``/metrics``: our counter rows and the job queue, read at scrape
time from the database that every worker writes to."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from metrics import recording
from metrics.models import MetricCounter

COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    recording.EXPORTS_STARTED: ("Exports a worker started.", ()),
    recording.EXPORTS_COMPLETED: ("Exports that completed.", ()),
    recording.EXPORTS_FAILED: ("Exports that failed (including worker lost).", ()),
    recording.EXPORTS_CANCELLED: ("Exports cancelled, pending or running.", ()),
    recording.EXPORTED_BYTES: ("Bytes of disks downloaded by completed exports.", ()),
    recording.WEBHOOK_DELIVERIES: (
        "Webhook delivery attempts by outcome: delivered, retrying (failed, retry scheduled), failed (given up).",
        ("outcome",),
    ),
}
# Label values shown at 0 before anything happened, so alert rules see the series from the start.
KNOWN_LABELS = {recording.WEBHOOK_DELIVERIES: [{"outcome": o} for o in ("delivered", "retrying", "failed")]}
HISTOGRAMS = {recording.EXPORT_DURATION: "Duration of completed exports, start to finish, in seconds."}
GAUGES = {
    "hypersdk_queue_length": "Jobs waiting for a worker (pending).",
    "hypersdk_jobs_running": "Jobs running on a worker now.",
    "hypersdk_webhook_queue_length": "Webhook deliveries waiting for their next attempt.",
}


class HyperSDKCollector:
    def describe(self) -> Iterator[Metric]:
        """The families without values: registering the collector must not touch the database."""
        for name, (doc, labels) in COUNTERS.items():
            yield CounterMetricFamily(name, doc, labels=labels)
        for name, doc in HISTOGRAMS.items():
            yield HistogramMetricFamily(name, doc)
        for name, doc in GAUGES.items():
            yield GaugeMetricFamily(name, doc)

    def collect(self) -> Iterator[Metric]:
        rows: dict[str, dict[str, float]] = defaultdict(dict)
        for name, labels, value in MetricCounter.objects.values_list("name", "labels", "value"):
            rows[name][labels] = value
        yield from self._counters(rows)
        yield from self._histograms(rows)
        yield from self._gauges()

    def _counters(self, rows: dict[str, dict[str, float]]) -> Iterator[Metric]:
        for name, (doc, label_names) in COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=label_names)
            values = {recording.label_key(labels): 0.0 for labels in KNOWN_LABELS.get(name, [])}
            if not label_names:
                values[recording.label_key()] = 0.0
            values.update(rows.get(name, {}))
            for key, value in sorted(values.items()):
                labels = json.loads(key)
                family.add_metric([labels.get(label, "") for label in label_names], value)
            yield family

    def _histograms(self, rows: dict[str, dict[str, float]]) -> Iterator[Metric]:
        for name, doc in HISTOGRAMS.items():
            counts = {json.loads(key)["le"]: value for key, value in rows.get(f"{name}_bucket", {}).items()}
            buckets = [
                (floatToGoString(bound), counts.get(floatToGoString(bound), 0.0))
                for bound in [*recording.DURATION_BUCKETS, math.inf]
            ]
            total = rows.get(f"{name}_sum", {}).get(recording.label_key(), 0.0)
            family = HistogramMetricFamily(name, doc)
            family.add_metric([], buckets, total)
            yield family

    def _gauges(self) -> Iterator[Metric]:
        from exports.models import Job
        from webhooks.models import WebhookDelivery

        jobs = dict(
            Job.objects.filter(status__in=[Job.Status.PENDING, Job.Status.RUNNING])
            .values_list("status")
            .annotate(n=Count("id"))
        )
        pending_deliveries = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count()
        values = {
            "hypersdk_queue_length": jobs.get(Job.Status.PENDING, 0),
            "hypersdk_jobs_running": jobs.get(Job.Status.RUNNING, 0),
            "hypersdk_webhook_queue_length": pending_deliveries,
        }
        for name, doc in GAUGES.items():
            yield GaugeMetricFamily(name, doc, value=values[name])


_registered: set[int] = set()


def register(registry: CollectorRegistry) -> None:
    """Register once per registry (``AppConfig.ready`` may run more than once in tests)."""
    if id(registry) not in _registered:
        registry.register(HyperSDKCollector())
        _registered.add(id(registry))
