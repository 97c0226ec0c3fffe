"""Metric values kept in the database, so every process (workers on other machines, beat, the
API) adds to the same numbers and the API's ``/metrics`` can read them all."""

from __future__ import annotations

from django.db import models


class MetricCounter(models.Model):
    """One Prometheus sample that only goes up: a counter, or one part of a histogram
    (a ``_bucket`` with its ``le`` label, the ``_count``, the ``_sum``).

    A row, not a ``COUNT(*)`` over jobs: the numbers survive the retention purge of old jobs.
    """

    name = models.CharField(max_length=128)
    # The labels as compact JSON with sorted keys (``{"outcome":"delivered"}``), so one set of
    # labels is always spelled the same and the unique constraint holds.
    labels = models.CharField(max_length=512, default="{}")
    value = models.FloatField(default=0.0)

    class Meta:
        ordering = ["name", "labels"]
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="metric_counter_unique")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} {self.value}"
