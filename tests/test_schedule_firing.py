"""Schedules fire exactly at the slots NEXT RUN shows: a fake clock drives beat's real tick task.

The clock is faked by patching ``django.utils.timezone.now`` (and the name the models module
imported), so the tick task, the service and the API's ``next_run_at`` all read the same instant;
nothing waits on the wall clock. The tick jumps straight to each displayed NEXT RUN (plus a few
seconds, as beat's minute tick would be late) instead of stepping through every minute.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

import schedules.models
from cli import render_schedules as render  # the schedule renderers these tests read
from exports.models import Job
from schedules import cron, firing, run_retention, service, tasks
from schedules.api.serializers import ScheduleSerializer
from schedules.models import Schedule, ScheduleRun
from schedules.spec import ScheduleSpecSerializer
from tests.fuzzing import FUZZ

BERLIN = "Europe/Berlin"
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]
FIRED = (ScheduleRun.Outcome.STARTED, ScheduleRun.Outcome.SKIPPED)


def at(text: str, tz: str = "UTC") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


class FakeClock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: datetime) -> None:
        self.now = start
        monkeypatch.setattr(timezone, "now", lambda: self.now)
        monkeypatch.setattr(schedules.models, "now", lambda: self.now)

    def set(self, moment: datetime) -> None:
        assert moment >= self.now, "the fake clock only moves forward"
        self.now = moment


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    return FakeClock(monkeypatch, at("2027-01-04T12:00:00"))


def create(cron: str, tz: str = "UTC", **extra) -> Schedule:
    """Through the same validation and service as the API, the CLIs and import_config."""
    spec = ScheduleSpecSerializer(
        data={
            "name": extra.pop("name", "s"),
            "cron": cron,
            "timezone": tz,
            "vm_path": "/dc/vm/prod/web01",
            **extra,
        }
    )
    assert spec.is_valid(), spec.errors
    return service.create_schedule(spec.validated_data)


def shown(schedule_id: str) -> dict:
    """The schedule as the API and `hyperctl schedules list` show it, at the fake clock's now."""
    return ScheduleSerializer(service.get_schedule(schedule_id)).data


def next_run(schedule_id: str) -> datetime | None:
    value = shown(schedule_id)["next_run_at"]
    return datetime.fromisoformat(value) if value else None


def tick() -> None:
    """Beat's task, called as beat's worker calls it."""
    tasks.fire_due_schedules()


def fired(schedule_id: str) -> list[datetime]:
    runs = ScheduleRun.objects.filter(schedule_id=schedule_id).order_by("slot")
    assert all(run.outcome in FIRED for run in runs), [(r.slot, r.outcome) for r in runs]
    return [run.slot for run in runs]


def fired_at_local(schedule_id: str, tz: str, fmt: str = "%H:%M") -> list[str]:
    """The fired slots as wall-clock times in ``tz``, formatted by ``fmt``."""
    local = ZoneInfo(tz)
    return [slot.astimezone(local).strftime(fmt) for slot in fired(schedule_id)]


def follow_next_run(clock: FakeClock, schedule_id: str, until: datetime, late: int = 5) -> list[datetime]:
    """Tick at every displayed NEXT RUN (``late`` seconds after it) up to ``until``; the NEXT RUNs."""
    promised = []
    while (slot := next_run(schedule_id)) is not None and slot <= until:
        promised.append(slot)
        clock.set(slot + timedelta(seconds=late))
        tick()
    clock.set(max(clock.now, until))
    tick()
    return promised


# ---- the two cases of the issue ----------------------------------------------------------------


def test_sunday_written_as_7_fires_on_sundays(db, clock):
    schedule = create("0 3 * * 7")
    promised = follow_next_run(clock, schedule.id, at("2027-01-25T00:00"))
    # 2027-01-04 is a Monday: the next three Sundays.
    expected = [at("2027-01-10T03:00"), at("2027-01-17T03:00"), at("2027-01-24T03:00")]
    assert promised == expected and fired(schedule.id) == expected


def test_weekday_range_0_to_7_fires_every_day(db, clock):
    schedule = create("0 3 * * 0-7")
    follow_next_run(clock, schedule.id, at("2027-01-11T00:00"))
    assert fired(schedule.id) == [at(f"2027-01-{day:02}T03:00") for day in range(5, 11)]


def test_a_time_skipped_by_spring_forward_fires_at_the_end_of_the_gap(db, clock):
    clock.set(at("2027-03-27T12:00", BERLIN))
    schedule = create("30 2 * * *", BERLIN)
    assert next_run(schedule.id) == at("2027-03-28T03:00", BERLIN)
    clock.set(at("2027-03-28T03:00:04", BERLIN))
    tick()
    assert fired(schedule.id) == [at("2027-03-28T03:00", BERLIN)]  # 03:00 CEST, not 03:30
    assert next_run(schedule.id) == at("2027-03-29T02:30", BERLIN)


def test_a_time_repeated_by_fall_back_fires_once(db, clock):
    clock.set(at("2027-10-30T12:00", BERLIN))
    schedule = create("30 2 * * *", BERLIN)
    follow_next_run(clock, schedule.id, at("2027-11-01T12:00", BERLIN))
    # 02:30 CEST (the first pass) on the 31st, 02:30 CET on the 1st.
    assert fired(schedule.id) == [at("2027-10-31T00:30"), at("2027-11-01T01:30")]


def test_lord_howe_half_hour_shift_fires_the_skipped_slot_at_the_end_of_the_gap(db, clock):
    # Lord Howe moves 02:00 → 02:30 on 2027-10-03.
    clock.set(at("2027-10-02T12:00", "Australia/Lord_Howe"))
    schedule = create("15 2 * * *", "Australia/Lord_Howe")
    follow_next_run(clock, schedule.id, at("2027-10-04T12:00", "Australia/Lord_Howe"))
    assert fired_at_local(schedule.id, "Australia/Lord_Howe", "%d %H:%M") == [
        "03 02:30",
        "04 02:15",
    ]


def tick_every_minute(clock: FakeClock, until: datetime) -> None:
    while clock.now < until:
        clock.set(clock.now + timedelta(minutes=1))
        tick()


@pytest.mark.parametrize(
    ("tz", "expression", "created", "expected_next"),
    [
        # The second pass of the repeated hour: the first pass's 02:55 / 01:55 / 01:45 is gone.
        (BERLIN, "55 2 * * *", "2027-10-31T01:02:00", "2027-11-01T02:55:00+01:00"),
        ("America/New_York", "55 1 * * *", "2027-11-07T06:02:00", "2027-11-08T01:55:00-05:00"),
        ("Australia/Lord_Howe", "45 1 * * *", "2027-04-03T15:02:00", "2027-04-05T01:45:00+10:30"),
    ],
)
def test_a_schedule_created_in_the_repeated_hour_never_shows_or_fires_a_slot_before_it(
    db, clock, tz, expression, created, expected_next
):
    clock.set(at(created))
    schedule = create(expression, tz)
    assert next_run(schedule.id) == datetime.fromisoformat(expected_next)
    tick_every_minute(clock, at(created) + timedelta(hours=2))
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 0


@pytest.mark.parametrize(
    ("since", "expression", "expected_next", "until", "slots"),
    [
        # Lord Howe moves 02:00 → 01:30 on 2027-04-04; 04:00 is after it, and exists once.
        pytest.param(
            "2027-04-03T10:00", "*/10 4 * * *", "2027-04-04T04:00:00+10:30", "2027-04-04T05:00",
            ["04:00", "04:10", "04:20", "04:30", "04:40", "04:50"],
            id="fall-back-fires-every-slot",
        ),
        # Lord Howe moves 02:00 → 02:30 on 2027-10-03: 03:00 exists; */10 in the gap does not fire.
        pytest.param(
            "2027-10-02T10:00", "*/10 3 * * *", "2027-10-03T03:00:00+11:00", "2027-10-03T04:00",
            ["03:00", "03:10", "03:20", "03:30", "03:40", "03:50"],
            id="spring-forward-fires-the-slots-after-the-gap",
        ),
        pytest.param(
            "2027-10-02T10:00", "*/10 2 * * *", "2027-10-03T02:30:00+11:00", "2027-10-03T04:00",
            ["02:30", "02:40", "02:50"],
            id="spring-forward-skips-the-slots-in-the-gap",
        ),
    ],
)  # fmt: skip
def test_lord_howe_half_hour_shift_fires_the_slots_next_run_shows(
    db, clock, since, expression, expected_next, until, slots
):
    clock.set(at(since))
    schedule = create(expression, "Australia/Lord_Howe")
    assert next_run(schedule.id) == datetime.fromisoformat(expected_next)
    tick_every_minute(clock, at(until, "Australia/Lord_Howe"))
    assert fired_at_local(schedule.id, "Australia/Lord_Howe") == slots


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 0 L * *", ["2027-01-31T00:00", "2027-02-28T00:00", "2027-03-31T00:00"]),
        ("0 0 * * 1#2", ["2027-01-11T00:00", "2027-02-08T00:00", "2027-03-08T00:00"]),
        ("0 0 1 jan,mar *", ["2027-03-01T00:00"]),
        ("@monthly", ["2027-02-01T00:00", "2027-03-01T00:00", "2027-04-01T00:00"]),
        ("0 12 13 * fri", ["2027-01-08T12:00", "2027-01-13T12:00", "2027-01-15T12:00"]),
    ],
)
def test_the_validators_extensions_and_names_fire(db, clock, expression, expected):
    schedule = create(expression)
    follow_next_run(clock, schedule.id, at(expected[-1]) + timedelta(minutes=1))
    assert fired(schedule.id) == [at(text) for text in expected]


# ---- missed runs, edits, two beats ---------------------------------------------------------------


def test_daemon_down_runs_the_latest_slot_in_grace_and_records_the_others_missed(db, clock, settings):
    settings.HYPERSDK_SCHEDULE_GRACE_SECONDS = 900
    schedule = create("0 2 * * *")
    clock.set(at("2027-01-07T02:10"))  # down since Monday noon: Tue, Wed missed; Thu 10 minutes late
    tick()
    runs = {run.slot.isoformat(): run.outcome for run in ScheduleRun.objects.filter(schedule=schedule)}
    assert runs == {
        "2027-01-05T02:00:00+00:00": "missed",
        "2027-01-06T02:00:00+00:00": "missed",
        "2027-01-07T02:00:00+00:00": "started",
    }
    clock.set(at("2027-01-09T03:00"))  # down again; Sat's slot is an hour old: past the grace
    tick()
    assert ScheduleRun.objects.filter(schedule=schedule, outcome="missed").count() == 4
    assert Job.objects.filter(origin="schedule").count() == 1
    view = shown(schedule.id)
    assert (view["missed_count"], view["last_missed_slot"]) == (4, "2027-01-09T02:00:00+00:00")
    assert view["next_run_at"] == "2027-01-10T02:00:00+00:00"
    assert render.schedule_table([view])[1].split("  ")[-2].strip().endswith("(4 missed)")


def test_a_day_down_records_only_the_last_100_missed_minutes(db, clock):
    schedule = create("* * * * *")
    clock.set(at("2027-01-05T12:00:05"))
    tick()
    runs = ScheduleRun.objects.filter(schedule=schedule).order_by("slot")
    assert [run.outcome for run in runs] == ["missed"] * firing.MAX_MISSED_RECORDED + ["started"]
    assert runs.first().slot == at("2027-01-05T10:20") and runs.last().slot == at("2027-01-05T12:00")


def test_an_edit_between_ticks_fires_the_new_expression_from_its_next_run(db, clock):
    schedule = create("0 2 * * *")
    clock.set(at("2027-01-05T01:59"))
    service.update_schedule(Schedule.objects.get(id=schedule.id), {"cron": "0 3 * * *"})
    assert next_run(schedule.id) == at("2027-01-05T03:00")
    clock.set(at("2027-01-05T02:00:05"))
    tick()
    assert fired(schedule.id) == []
    follow_next_run(clock, schedule.id, at("2027-01-06T12:00"))
    assert fired(schedule.id) == [at("2027-01-05T03:00"), at("2027-01-06T03:00")]


def test_disabled_slots_neither_fire_nor_count_as_missed_after_reenabling(db, clock):
    schedule = create("0 2 * * *")
    clock.set(at("2027-01-05T01:00"))
    service.set_enabled(schedule.id, False)
    assert next_run(schedule.id) is None
    clock.set(at("2027-01-05T02:00:05"))
    tick()
    clock.set(at("2027-01-05T02:05"))
    service.set_enabled(schedule.id, True)
    assert next_run(schedule.id) == at("2027-01-06T02:00")
    tick()
    follow_next_run(clock, schedule.id, at("2027-01-06T12:00"))
    assert fired(schedule.id) == [at("2027-01-06T02:00")]
    assert not ScheduleRun.objects.filter(outcome="missed").exists()


def test_an_edit_that_keeps_the_expression_keeps_a_due_slot(db, clock):
    schedule = create("0 2 * * *")
    clock.set(at("2027-01-05T02:00:01"))  # due, the tick not there yet
    service.update_schedule(Schedule.objects.get(id=schedule.id), {"overlap": "allow"})
    tick()
    assert fired(schedule.id) == [at("2027-01-05T02:00")]


@pytest.mark.django_db(transaction=True)
def test_two_beats_ticking_at_once_start_one_job_per_slot(clock):
    schedules_ = [create(f"{minute} 2 * * *", name=f"s{minute}", overlap="allow") for minute in range(3)]
    clock.set(at("2027-01-05T02:02:30"))  # all three due (slot 02:02 runs, 02:00 and 02:01 are in grace too)
    barrier = threading.Barrier(2)
    errors = []

    def beat() -> None:
        try:
            barrier.wait(timeout=30)
            tick()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for schedule in schedules_:
        assert len(fired(schedule.id)) == 1
    assert Job.objects.filter(origin="schedule").count() == 3


@pytest.mark.django_db(transaction=True)
def test_disabling_while_the_tick_holds_the_schedule_waits_for_it_and_stops_later_slots(clock, monkeypatch):
    schedule = create("*/5 * * * *", overlap="allow")
    clock.set(at("2027-01-04T12:05:02"))
    inside, go = threading.Event(), threading.Event()
    real = cron.due_slots

    def slow_due_slots(*args, **kwargs):
        inside.set()
        go.wait(timeout=30)
        return real(*args, **kwargs)

    monkeypatch.setattr(cron, "due_slots", slow_due_slots)
    ticking = threading.Thread(target=lambda: (tick(), connection.close()))
    ticking.start()
    assert inside.wait(timeout=30)
    disabling = threading.Thread(target=lambda: (service.set_enabled(schedule.id, False), connection.close()))
    disabling.start()
    go.set()
    ticking.join()
    disabling.join()
    monkeypatch.setattr(cron, "due_slots", real)
    # The slot the tick held was due before the disable: it ran once; nothing after it.
    assert fired(schedule.id) == [at("2027-01-04T12:05")]
    clock.set(at("2027-01-04T12:10:02"))
    tick()
    assert fired(schedule.id) == [at("2027-01-04T12:05")] and not Schedule.objects.get().enabled


# ---- property: fired slots == NEXT RUN slots -------------------------------------------------------

MINUTE = st.one_of(st.integers(0, 59).map(str), st.sampled_from(["0,30", "15,45", "*/30", "5-6"]))
HOUR = st.one_of(
    st.integers(0, 23).map(str), st.sampled_from(["1-3", "2,3", "*/8", "0-23/6", "22-23", "1,2,3"])
)
DAY = st.one_of(
    st.just("*"),
    st.integers(1, 31).map(str),
    st.sampled_from(["L", "1-7", "*/10", "1,15", "29", "28-31"]),
)
MONTH = st.one_of(
    st.just("*"),
    st.integers(1, 12).map(str),
    st.sampled_from(["jan", "mar-oct", "*/3", "feb,mar,nov", "10-12"]),
)
WEEKDAY = st.one_of(
    st.just("*"),
    st.integers(0, 7).map(str),
    st.sampled_from(["mon-fri", "sat,sun", "5-7", "0-7", "7", "sun", "1#2", "5L", "0,7", "*/2"]),
)
# Every hour only on a single day a year (a DST day among them): a few dozen slots, not 9,600.
EVERY_HOUR_ON_ONE_DAY = st.tuples(
    MINUTE,
    st.sampled_from(["*", "*/2"]),
    st.integers(1, 31).map(str),
    st.integers(1, 12).map(str),
    st.just("*"),
)
FIVE_FIELDS = st.one_of(st.tuples(MINUTE, HOUR, DAY, MONTH, WEEKDAY), EVERY_HOUR_ON_ONE_DAY).map(" ".join)
EXPRESSIONS = st.one_of(
    FIVE_FIELDS, st.sampled_from(["@daily", "@weekly", "@monthly", "@yearly", "@midnight"])
)
STARTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


@settings(FUZZ, max_examples=20)
@given(expression=EXPRESSIONS, tz=st.sampled_from(ZONES), start=STARTS, late=st.integers(0, 55))
@example(expression="30 * 31 10 *", tz="Europe/Berlin", start=datetime(2026, 12, 1, tzinfo=UTC), late=7)
@example(expression="*/20 1 * * 0", tz="America/New_York", start=datetime(2027, 1, 1, tzinfo=UTC), late=10)
@example(
    expression="0,30 * 3 10 *", tz="Australia/Lord_Howe", start=datetime(2026, 12, 1, tzinfo=UTC), late=1
)
@example(expression="30 2 * * 0", tz="Europe/Berlin", start=datetime(2026, 1, 1, tzinfo=UTC), late=0)
@example(expression="15 2 * * 7", tz="Australia/Lord_Howe", start=datetime(2026, 9, 1, tzinfo=UTC), late=3)
@example(expression="30 1 * * *", tz="America/New_York", start=datetime(2026, 10, 1, tzinfo=UTC), late=55)
@example(expression="55 2 * * *", tz="Europe/Berlin", start=datetime(2027, 10, 31, 1, 2, tzinfo=UTC), late=0)
@example(
    expression="55 1 * * *", tz="America/New_York", start=datetime(2027, 11, 7, 6, 2, tzinfo=UTC), late=0
)
@example(
    expression="45 1 * * *", tz="Australia/Lord_Howe", start=datetime(2027, 4, 3, 15, 2, tzinfo=UTC), late=0
)
def test_for_400_days_the_tick_fires_exactly_the_slots_next_run_showed(
    db, monkeypatch, expression, tz, start, late
):
    Schedule.objects.all().delete()
    clock = FakeClock(monkeypatch, start)
    spec = ScheduleSpecSerializer(
        data={"name": "p", "cron": expression, "timezone": tz, "vm_path": "/dc/vm/prod/web01"}
    )
    if not spec.is_valid():
        # Only a day no chosen month has (30 in feb) may be refused: it would never fire.
        assert "never fire" in spec.errors["cron"][0], spec.errors
        return
    schedule = service.create_schedule(spec.validated_data)
    # The first run's job stays pending, so later slots are "skipped": the same firing path,
    # without an export per slot.
    promised = follow_next_run(clock, schedule.id, start + timedelta(days=400), late=late)
    assert fired(schedule.id) == promised
    assert ScheduleRun.objects.filter(schedule=schedule).exclude(outcome__in=FIRED).count() == 0


# Around every DST change of the zones above in 2027, as UTC instants.
TRANSITIONS = [
    datetime(2027, 3, 28, 1, tzinfo=UTC),  # Berlin forward
    datetime(2027, 10, 31, 1, tzinfo=UTC),  # Berlin back
    datetime(2027, 3, 14, 7, tzinfo=UTC),  # New York forward
    datetime(2027, 11, 7, 6, tzinfo=UTC),  # New York back
    datetime(2027, 4, 3, 15, tzinfo=UTC),  # Lord Howe back (30 min)
    datetime(2027, 10, 2, 15, 30, tzinfo=UTC),  # Lord Howe forward (30 min)
]
# Dense expressions, so the changed hours hold slots; fixed and wildcard hours both.
NEAR_DST_EXPRESSIONS = st.one_of(
    st.tuples(MINUTE, HOUR, st.just("*"), st.just("*"), st.just("*")).map(" ".join),
    st.sampled_from(["*/10 * * * *", "0,30 * * * *", "*/7 1-3 * * *", "45 1 * * *", "30 2 * * *"]),
)


@settings(FUZZ, max_examples=25, phases=[Phase.explicit, Phase.generate])
@given(
    expression=NEAR_DST_EXPRESSIONS,
    tz=st.sampled_from(ZONES),
    transition=st.sampled_from(TRANSITIONS),
    offset=st.integers(-6 * 60, 2 * 60),
    steps=st.lists(st.integers(1, 90), min_size=40, max_size=80),
)
@example(
    expression="*/10 4 * * *",
    tz="Australia/Lord_Howe",
    transition=TRANSITIONS[4],
    offset=-5 * 60,
    steps=[1] * 40 + [90] * 10,
)
@example(
    expression="*/10 3 * * *",
    tz="Australia/Lord_Howe",
    transition=TRANSITIONS[5],
    offset=-5 * 60,
    steps=[7] * 80,
)
@example(expression="55 2 * * *", tz=BERLIN, transition=TRANSITIONS[1], offset=2, steps=[1] * 60)
def test_at_any_tick_cadence_the_slots_recorded_are_the_next_run_sequence(
    db, monkeypatch, expression, tz, transition, offset, steps
):
    """Ticks every 1 to 90 minutes, as a busy or restarted beat would, across a DST change: every
    slot the NEXT RUN chain shows gets exactly one run (started, skipped or missed), no other."""
    Schedule.objects.all().delete()
    start = transition + timedelta(minutes=offset, seconds=17)
    clock = FakeClock(monkeypatch, start)
    spec = ScheduleSpecSerializer(
        data={"name": "c", "cron": expression, "timezone": tz, "vm_path": "/dc/vm/prod/web01"}
    )
    assert spec.is_valid(), spec.errors
    schedule = service.create_schedule(spec.validated_data)
    chain = []
    for step in steps:
        shown_next = next_run(schedule.id)
        assert shown_next > clock.now, "NEXT RUN is never in the past"
        clock.set(clock.now + timedelta(minutes=step))
        tick()
        while shown_next <= clock.now:
            chain.append(shown_next.astimezone(UTC))
            shown_next = cron.next_run(expression, tz, shown_next)
    recorded = list(
        ScheduleRun.objects.filter(schedule=schedule).order_by("slot").values_list("slot", flat=True)
    )
    assert recorded == chain


def test_the_two_passes_of_a_repeated_hour_get_two_run_directories(db, clock):
    clock.set(at("2027-10-30T22:00"))
    schedule = create("0 * * * *", BERLIN, output_path="/exports/nightly")
    follow_next_run(clock, schedule.id, at("2027-10-31T03:00"))
    slots = fired(schedule.id)
    names = [os.path.basename(firing.run_directory(schedule, slot)) for slot in slots]
    assert len(set(names)) == len(names)
    stamps = [name.removeprefix(f"s-{schedule.id}-") for name in names]
    # Ordinary wall times keep their names; only 02:00 (CEST, then CET) carries the offset.
    assert stamps == [
        "20271031-010000",
        "20271031-020000+0200",
        "20271031-020000+0100",
        "20271031-030000",
        "20271031-040000",
    ]
    assert all(run_retention._is_run_directory(schedule, Path("/exports/nightly") / name) for name in names)


def test_dashboard_admin_and_cli_show_next_run_in_the_schedules_zone_with_its_offset(db, clock):
    from django.contrib.admin.sites import site
    from django.template.loader import render_to_string

    # 00:30 UTC on 2027-10-31 is 02:30 CEST, the first pass: NEXT RUN is 02:00 CET, the second.
    clock.set(at("2027-10-31T00:30"))
    schedule = create("0 * * * *", BERLIN)
    row = render_to_string(
        "dashboard/partials/schedule_row.html", {"schedule": service.get_schedule(schedule.id)}
    )
    assert "2027-10-31 02:00 +0100" in row, row
    assert site._registry[Schedule].next_run(schedule) == "2027-10-31 02:00 +0100 Europe/Berlin"
    first_pass = render.schedule_time("2027-10-31T02:00:00+02:00")
    second_pass = render.schedule_time(shown(schedule.id)["next_run_at"])
    assert (first_pass, second_pass) == ("2027-10-31 02:00+0200", "2027-10-31 02:00+0100")


@pytest.mark.parametrize("tz", ["localtime", "Factory"])
def test_zones_that_are_not_places_are_refused(db, tz):
    spec = ScheduleSpecSerializer(
        data={"name": "z", "cron": "0 2 * * *", "timezone": tz, "vm_path": "/dc/vm/a"}
    )
    assert not spec.is_valid()
    assert "is not a place" in str(spec.errors), spec.errors


def test_a_grace_beyond_seven_days_is_refused_at_startup():
    import subprocess
    import sys

    env = {**os.environ, "HYPERSDK_SCHEDULE_GRACE_SECONDS": "99999999999999999999"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "HYPERSDK_SCHEDULE_GRACE_SECONDS must be <= 604800" in result.stderr
