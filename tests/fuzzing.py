"""The Hypothesis settings of the property tests, declared once."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Derandomized: the same inputs every run; enough to cover each strategy's branches. No example
# database (runs stay independent) and no deadline (a case may touch the database or the disk).
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
