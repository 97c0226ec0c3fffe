"""The one cron engine: which instants are the slots of a schedule.

An expression is five fields as Debian cron reads them (ranges, steps, lists, names, 7 for
Sunday; day-of-month and day-of-week OR-ed when both are restricted), one of the aliases, or
cronsim's extensions (``L``, ``LW``, ``5L``, ``1#2``), evaluated in the schedule's time zone with
Debian cron's DST behaviour. Both what is shown (NEXT RUN) and what fires (the tick in
``schedules.firing``) come from :func:`slots`; nothing else reads an expression.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cron_descriptor import Options
from cron_descriptor.ExpressionDescriptor import ExpressionDescriptor
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
    # available_timezones() walks the tz database on every call (~10 ms): once per process.
    return frozenset(available_timezones())


# In the tz database but not places: ``localtime`` is whatever the host says, ``Factory`` a
# placeholder ("-00"). A schedule's slots must not change with the host it runs on.
_NOT_PLACES = frozenset({"localtime", "Factory"})


def zone(name: str) -> ZoneInfo:
    if name in _NOT_PLACES:
        raise InvalidCron(f"time zone {name!r} is not a place: use an IANA name like Europe/Berlin")
    if name not in _known_zones():
        raise InvalidCron(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise InvalidCron(f"unknown time zone {name!r}") from None


def validate(expression: str, tz_name: str = "UTC") -> str:
    """Return the five-field form, or raise InvalidCron with a one-line reason.

    Accepted means it fires: the engine must find a first slot. An expression that can never
    match (``0 0 31 2 *``) is refused here rather than shown as "never".
    """
    fields = expand(expression)
    if fields.startswith("@"):
        raise InvalidCron(
            f"invalid cron {expression!r}: only @hourly, @daily, @weekly, @monthly, @yearly are supported"
        )
    if len(fields.split(" ")) != 5:
        raise InvalidCron(
            f"invalid cron {expression!r}: want 5 fields (minute hour day month weekday) or @daily"
        )
    start = datetime.now(zone(tz_name))
    try:
        next(CronSim(fields, start))
    except StopIteration:
        raise InvalidCron(f"invalid cron {expression!r}: it would never fire") from None
    except CronSimError as exc:
        raise InvalidCron(f"invalid cron {expression!r}: {_reason(fields, start, exc)}") from None
    return fields


def _reason(fields: str, start: datetime, error: CronSimError) -> str:
    """cronsim says "Bad day-of-month" both for 32 and for 31 in February: tell them apart."""
    minute, hour, day, month, weekday = fields.split(" ")
    if str(error) == "Bad day-of-month" and month != "*":
        try:
            next(CronSim(f"{minute} {hour} {day} * {weekday}", start))
        except (CronSimError, StopIteration):
            pass
        else:
            return f"day {day} never falls in month {month}: it would never fire"
    return str(error)


# Longer than any backward shift in the tz database (Troll station: 2 hours).
_MAX_SHIFT = timedelta(hours=3)


def slots(expression: str, tz_name: str, after: datetime) -> Iterator[datetime]:
    """The schedule's slots strictly after ``after`` (compared in UTC), in order, in its zone.

    One function of (expression, zone, after): the set of slots is fixed and this yields its
    members later than ``after``, so NEXT RUN, a per-minute tick and a tick that jumps ahead all
    walk the same sequence. cronsim matches the fields on local wall times (without a zone: its
    own DST handling ignores ``fold`` and assumes one-hour shifts); :func:`_instants` maps each
    wall time to instants by Debian cron's rules, for a shift of any size (Lord Howe: 30 min).
    """
    tz = zone(tz_name)
    fields = expand(expression)
    minute, hour = fields.split(" ")[:2]
    fixed = not minute.startswith("*") and not hour.startswith("*")
    after_utc = after.astimezone(UTC)
    # Walk from early enough that no wall time whose instant is after ``after`` is missed: a
    # backward shift maps a wall time up to _MAX_SHIFT before ``after``'s to a later instant.
    walk_start = after_utc.astimezone(tz).replace(tzinfo=None) - _MAX_SHIFT
    pending: list[datetime] = []  # min-heap of UTC instants found and not yet yielded
    previous: datetime | None = None
    for wall in CronSim(fields, walk_start):
        floor, instants = _instants(wall, tz, fixed)
        # ``floor`` never decreases along the walk and no later wall time maps before it:
        # every pending instant before it is final, and they come out in order.
        while pending and pending[0] < floor:
            instant = heapq.heappop(pending)
            if instant > after_utc and instant != previous:
                previous = instant
                yield instant.astimezone(tz)
        for instant in instants:
            heapq.heappush(pending, instant)
    while pending:  # cronsim ran out of years
        instant = heapq.heappop(pending)
        if instant > after_utc and instant != previous:
            previous = instant
            yield instant.astimezone(tz)


def _instants(wall: datetime, tz: ZoneInfo, fixed: bool) -> tuple[datetime, list[datetime]]:
    """(the earliest instant ``wall`` can denote, the UTC instants it fires at).

    Debian cron: a wall time skipped by a forward shift fires once at the end of the gap when
    minute and hour are fixed (neither starts with ``*``), else not at all; a wall time repeated
    by a backward shift fires on its first pass when fixed, on both passes otherwise.
    """
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    first_utc = first.astimezone(UTC)
    if first.utcoffset() == second.utcoffset():
        return first_utc, [first_utc]
    if first_utc.astimezone(tz).replace(tzinfo=None) == wall:  # repeated: it exists twice
        second_utc = second.astimezone(UTC)
        return first_utc, [first_utc] if fixed else [first_utc, second_utc]
    # Skipped: the shift happened between ``wall - new offset`` and ``wall - old offset``.
    gap_end = _shift_instant(second.astimezone(UTC), first_utc, tz)
    return gap_end, [gap_end] if fixed else []


def _shift_instant(low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    """The first whole second in ``(low, high]`` already at ``high``'s UTC offset (bisected)."""
    target = high.astimezone(tz).utcoffset()
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == target:
            hi = middle
        else:
            lo = middle
    return datetime.fromtimestamp(hi, UTC)


def next_run(expression: str, tz_name: str, after: datetime) -> datetime:
    """The first slot strictly after ``after``, in the schedule's zone (what NEXT RUN shows)."""
    return next(slots(expression, tz_name, after))


def upcoming(expression: str, tz_name: str, after: datetime, count: int = 5) -> list[datetime]:
    """The first ``count`` slots strictly after ``after``, in the schedule's zone: the preview
    of an expression being typed. Raises InvalidCron (one line) as :func:`validate` does."""
    validate(expression, tz_name)
    return list(itertools.islice(slots(expression, tz_name, after), count))


def due_slots(expression: str, tz_name: str, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """The last ``limit`` slots in ``(after, until]``, oldest first, in UTC: what the tick fires.

    Compared in UTC: aware datetimes sharing a tzinfo compare by wall time, ignoring ``fold``,
    which would confuse the two passes through an autumn hour.
    """
    found: list[datetime] = []
    until = until.astimezone(UTC)
    for slot in slots(expression, tz_name, after):
        slot = slot.astimezone(UTC)
        if slot > until:
            break
        found.append(slot)
        if len(found) > limit:
            del found[0]
    return found


@lru_cache(maxsize=4096)
def describe(expression: str) -> str:
    """In words, for people ("At 12:00 AM, on day 13 of the month, or on Friday"); "" when
    cron_descriptor cannot read it. Cached: cron_descriptor takes ~2 ms, and a page of a list
    shows 50 schedules, most sharing a few expressions."""
    fields = expand(expression).split()
    if len(fields) != 5:
        return ""
    fields = [_single_step(item, bounds) for item, bounds in zip(fields, _FIELD_BOUNDS, strict=True)]
    try:
        descriptor = ExpressionDescriptor(" ".join(fields), Options())
        text = descriptor.get_full_description()
        weekdays = descriptor.get_day_of_week_description()
    except Exception:  # noqa: BLE001 - a description is a nicety
        return ""
    # cron_descriptor joins the two day fields as if both must hold ("only on Friday"); cron
    # fires on either when both are restricted (neither starts with "*"): see the module doc.
    if not fields[2].startswith("*") and not fields[4].startswith("*") and weekdays.startswith(", "):
        reading = weekdays.removeprefix(", ").removeprefix("only ")
        text = text.replace(weekdays, f", or {reading}", 1)
    return text


# (first, last) of minute, hour, day of month, month, day of week.
_FIELD_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _single_step(field: str, bounds: tuple[int, int]) -> str:
    """``field`` with each stepped item that yields one value (``0-59/100``, ``*/30`` in the
    hour field) written as that value: cron_descriptor would read it "every 100 minutes"."""
    items = []
    for item in field.split(","):
        span, _, step = item.partition("/")
        if step.isdigit() and int(step) > 0:
            first, _, last = span.partition("-")
            low = bounds[0] if first == "*" else int(first) if first.isdigit() else None
            high = int(last) if last.isdigit() else bounds[1] if not last else None
            if low is not None and high is not None and low + int(step) > high:
                item = str(low)
        items.append(item)
    return ",".join(items)
