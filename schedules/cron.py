"""Cron expressions as the guide writes them: five fields (or @hourly, @daily, @weekly...),
evaluated in the schedule's time zone with Debian cron's DST behaviour (cronsim)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cron_descriptor import get_description
from cronsim import CronSim, CronSimError

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class InvalidCron(ValueError):
    pass


def expand(expression: str) -> str:
    """The five-field form of an expression (aliases expanded, blanks normalised)."""
    text = " ".join(expression.split())
    return ALIASES.get(text.lower(), text)


@cache
def _known_zones() -> frozenset[str]:
    # available_timezones() walks the tz database on every call: once per process is enough
    # (a list of schedules asks once per row).
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    if name not in _known_zones():
        raise InvalidCron(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise InvalidCron(f"unknown time zone {name!r}") from None


def validate(expression: str, tz_name: str = "UTC") -> str:
    """Return the five-field form, or raise InvalidCron with a one-line reason."""
    fields = expand(expression)
    if len(fields.split(" ")) != 5:
        raise InvalidCron(
            f"invalid cron {expression!r}: want 5 fields (minute hour day month weekday) or @daily"
        )
    try:
        next(CronSim(fields, datetime.now(zone(tz_name))))
    except (CronSimError, StopIteration) as exc:
        raise InvalidCron(f"invalid cron {expression!r}: {exc}") from None
    return fields


def next_run(expression: str, tz_name: str, after: datetime) -> datetime:
    """The first run strictly after ``after``, in the schedule's zone."""
    return next(CronSim(expand(expression), after.astimezone(zone(tz_name))))


def slot_at(expression: str, tz_name: str, moment: datetime) -> datetime:
    """The scheduled time a firing at ``moment`` belongs to: the last slot at or before it."""
    # Reverse iteration yields times strictly before its start: start just after the minute.
    local = moment.astimezone(zone(tz_name)).replace(second=0, microsecond=0) + timedelta(seconds=1)
    return next(CronSim(expand(expression), local, reverse=True)).replace(second=0, microsecond=0)


@lru_cache(maxsize=4096)
def describe(expression: str) -> str:
    """In words, for people. Cached: cron_descriptor takes ~2 ms, and a page of a list shows
    50 schedules, most sharing a few expressions."""
    try:
        return get_description(expand(expression))
    except Exception:  # noqa: BLE001 - a description is a nicety
        return ""
