"""Schedules: cron validation, the API, firing once per slot (DST and the firing path against
NEXT RUN: tests/test_schedule_firing.py)."""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone as django_timezone
from django_celery_beat.models import PeriodicTask

from exports.models import Job
from hypersdk.lib import events
from schedules import cron, firing, run_retention, tasks
from schedules.models import Schedule, ScheduleRun
from tests.conftest import fire_at as fire
from tests.factories import schedule_admin_form

BERLIN = "Europe/Berlin"


def at(text: str, tz: str = BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


# ---- cron ----


@pytest.mark.parametrize("expression", ["0 25 * * *", "* * *", "61 * * * *", "0 0 32 * *", "@sometimes", ""])
def test_invalid_cron_is_refused_with_a_reason(expression):
    with pytest.raises(cron.InvalidCron, match="invalid cron"):
        cron.validate(expression)


@pytest.mark.parametrize(
    ("alias", "fields"), [("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@weekly", "0 0 * * 0")]
)
def test_aliases_expand_to_five_fields(alias, fields):
    assert cron.validate(alias) == fields


def test_unknown_time_zone_is_refused():
    with pytest.raises(cron.InvalidCron, match="unknown time zone 'Mars/Olympus'"):
        cron.zone("Mars/Olympus")


def test_next_run_is_computed_in_the_schedules_zone():
    assert cron.next_run("0 2 * * *", BERLIN, at("2026-01-10T12:00")) == at("2026-01-11T02:00")
    assert cron.next_run("0 2 * * *", "America/New_York", at("2026-01-10T12:00", "UTC")).isoformat() == (
        "2026-01-11T02:00:00-05:00"
    )


def test_schedules_can_be_described_for_people():
    assert cron.describe("0 9-17 * * 1-5") == "Between 09:00 AM and 05:59 PM, Monday through Friday"


def test_a_description_says_or_when_both_day_fields_are_restricted_as_the_slots_do():
    assert cron.describe("0 0 13 * 5") == "At 12:00 AM, on day 13 of the month, or on Friday"
    assert (
        cron.describe("0 0 13,14 * 1-5")
        == "At 12:00 AM, on day 13 and 14 of the month, or Monday through Friday"
    )
    # One restricted ("*/2" counts as not): both must hold, as the slots say.
    assert cron.describe("0 0 */2 * 5") == "At 12:00 AM, every 2 days, only on Friday"
    days = [
        slot.day
        for slot in itertools.islice(cron.slots("0 0 13 * 5", "UTC", at("2026-02-01T00:00", "UTC")), 5)
    ]
    assert days == [6, 13, 20, 27, 6]  # Fridays, and Friday the 13th, and (in March) Friday the 6th


def test_a_step_past_its_field_reads_as_the_one_value_it_fires_at():
    assert cron.describe("0-59/100 * * * *") == "Every hour"
    assert cron.describe("5/100 * * * *") == "At 5 minutes past the hour"
    assert cron.describe("0 */30 * * *") == "At 12:00 AM"
    assert [
        slot.hour
        for slot in itertools.islice(cron.slots("0 */30 * * *", "UTC", at("2026-01-10T12:00", "UTC")), 2)
    ] == [0, 0]


# ---- API ----


@pytest.fixture
def daily(operator_api, export_root) -> dict:
    response = operator_api.post(
        "/schedules",
        {
            "name": "daily-backup",
            "cron": "0 2 * * *",
            "vm_path": "/dc/vm/prod/web01",
            "output_path": str(export_root / "web01"),
            "timezone": BERLIN,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_returns_the_schedule_with_its_next_run_in_its_zone(daily, export_root):
    assert daily["id"].startswith("sched-")
    assert (daily["name"], daily["cron"], daily["enabled"], daily["overlap"]) == (
        "daily-backup",
        "0 2 * * *",
        True,
        "skip",
    )
    assert daily["cron_description"] == "At 02:00 AM"
    assert daily["next_run_at"].endswith(("+01:00", "+02:00")) and "T02:00:00" in daily["next_run_at"]
    assert daily["vm_path"] == "/dc/vm/prod/web01" and daily["output_path"] == str(export_root / "web01")


def test_a_schedule_gets_no_beat_entry_of_its_own_only_the_minute_tick_fires_it(daily, settings):
    assert not PeriodicTask.objects.exists()
    tick = settings.CELERY_BEAT_SCHEDULE["fire-due-schedules"]
    assert tick["task"] == tasks.fire_due_schedules.name == "schedules.tasks.fire_due_schedules"


def test_list_get_put_patch_delete(operator_api, daily):
    assert [s["id"] for s in operator_api.get("/schedules").json()["results"]] == [daily["id"]]
    assert operator_api.get(f"/schedules/{daily['id']}").json()["name"] == "daily-backup"
    patched = operator_api.patch(f"/schedules/{daily['id']}", {"cron": "@hourly"}, format="json").json()
    assert patched["cron"] == "0 * * * *" and patched["vm_path"] == "/dc/vm/prod/web01"
    put = operator_api.put(
        f"/schedules/{daily['id']}",
        {"name": "nightly", "cron": "0 3 * * *", "vm_path": "/dc/vm/prod/db01"},
        format="json",
    )
    assert (
        put.status_code == 200
        and put.json()["vm_path"] == "/dc/vm/prod/db01"
        and put.json()["name"] == "nightly"
    )
    assert operator_api.delete(f"/schedules/{daily['id']}").status_code == 204
    assert not Schedule.objects.exists()


def test_disable_clears_the_next_run_and_enable_brings_it_back(operator_api, daily):
    disabled = operator_api.post(f"/schedules/{daily['id']}/disable").json()
    assert disabled["enabled"] is False and disabled["next_run_at"] is None
    enabled = operator_api.post(f"/schedules/{daily['id']}/enable").json()
    assert enabled["enabled"] is True and enabled["next_run_at"] == daily["next_run_at"]


def test_trigger_starts_a_job_now_without_moving_the_next_run(operator_api, daily, export_root, redis_url):
    before = operator_api.get(f"/schedules/{daily['id']}").json()["next_run_at"]
    response = operator_api.post(f"/schedules/{daily['id']}/trigger")
    assert response.status_code == 202
    job = Job.objects.get(id=response.json()["job_id"])
    assert job.origin == "schedule" and job.vm_path == "/dc/vm/prod/web01"
    assert job.output_path.startswith(f"{export_root}/web01/daily-backup-{daily['id']}-")
    after = operator_api.get(f"/schedules/{daily['id']}").json()
    assert after["next_run_at"] == before and after["run_count"] == 1 and after["last_job"] == job.id


@pytest.fixture
def clock(monkeypatch):
    """timezone.now() held at the time set in ``clock[0]``: two triggers in one second, always."""
    held = [datetime(2026, 6, 1, 0, 0, 5, 100_000, tzinfo=ZoneInfo("UTC"))]
    monkeypatch.setattr(django_timezone, "now", lambda: held[0])
    return held


def test_two_triggers_in_one_second_get_a_run_directory_each(
    operator_api, daily, export_root, redis_url, clock
):
    first = operator_api.post(f"/schedules/{daily['id']}/trigger")
    clock[0] += timedelta(milliseconds=200)
    second = operator_api.post(f"/schedules/{daily['id']}/trigger")

    assert (first.status_code, second.status_code) == (202, 202), second.json()
    made = Job.objects.filter(id__in=[first.json()["job_id"], second.json()["job_id"]])
    assert {job.status for job in made} == {"pending"}, [job.error for job in made]
    stem = f"{export_root}/web01/daily-backup-{daily['id']}-20260601-020005"  # Berlin: UTC+2
    assert sorted(job.output_path for job in made) == [f"{stem}-100000", f"{stem}-300000"]


def test_a_cron_slots_run_directory_keeps_its_name(daily, redis_url, export_root):
    run = fire(daily["id"], at("2026-06-01T02:00"))
    assert run.job.output_path == f"{export_root}/web01/daily-backup-{daily['id']}-20260601-020000"


def test_retention_removes_triggered_runs_output_too(operator_api, daily, redis_url, clock):
    operator_api.patch(f"/schedules/{daily['id']}", {"retention": 1}, format="json")
    outputs = []
    for _ in range(3):
        job = Job.objects.get(id=operator_api.post(f"/schedules/{daily['id']}/trigger").json()["job_id"])
        Job.objects.filter(id=job.id).update(status="completed")
        os.makedirs(job.output_path)
        outputs.append(job.output_path)
        clock[0] += timedelta(milliseconds=300)
    run_retention.apply_retention(Schedule.objects.get(id=daily["id"]))
    assert [os.path.isdir(path) for path in outputs] == [False, False, True]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"cron": "0 25 * * *"}, "cron", "invalid cron '0 25 * * *'"),
        ({"cron": "* * *"}, "cron", "want 5 fields"),
        ({"cron": "61 * * * *"}, "cron", "invalid cron '61 * * * *'"),
        ({"cron": "0 0 * * * *"}, "cron", "want 5 fields"),
        ({"cron": "@every 5m"}, "cron", "only @hourly, @daily, @weekly, @monthly, @yearly"),
        ({"cron": "@reboot"}, "cron", "only @hourly"),
        ({"cron": "0 0 31 2 *"}, "cron", "never fire"),
        ({"cron": "0 0 * * 8"}, "cron", "invalid cron '0 0 * * 8'"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"name": "daily-backup"}, "name", "already exists"),
        ({"vm_path": None}, "vm_path", "may not be null"),
        ({"output_path": "/etc"}, "output_path", "export roots"),
    ],
)
def test_bad_schedules_are_400_and_nothing_changes(operator_api, daily, body, field, message):
    base = {"name": "other", "cron": "0 3 * * *", "vm_path": "/dc/vm/prod/db01"}
    response = operator_api.post("/schedules", {**base, **body}, format="json")
    assert response.status_code == 400
    assert any(message in error for error in response.json()[field]), response.json()
    assert Schedule.objects.count() == 1
    if field != "name":  # the update door refuses the same, and the schedule stays as it was
        response = operator_api.patch(f"/schedules/{daily['id']}", body, format="json")
        assert response.status_code == 400
        assert any(message in error for error in response.json()[field]), response.json()
        assert operator_api.get(f"/schedules/{daily['id']}").json() == daily


def test_missing_vm_path_is_a_400(operator_api):
    response = operator_api.post("/schedules", {"name": "x", "cron": "@daily"}, format="json")
    assert response.status_code == 400 and "vm_path" in response.json()


def test_unknown_schedule_is_a_404(operator_api):
    for method, path in [
        ("get", ""),
        ("put", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/enable"),
        ("post", "/disable"),
        ("post", "/trigger"),
    ]:
        assert (
            getattr(operator_api, method)(f"/schedules/sched-nope{path}", {}, format="json").status_code
            == 404
        )


# ---- firing ----


@pytest.fixture
def recorded_events():
    seen = []

    def record(event, data):
        seen.append((event, data))

    events.subscribe(record)
    yield seen
    events._subscribers.remove(record)


def test_one_job_per_slot_even_if_two_beats_fire_it(daily, redis_url, recorded_events):
    moment = at("2026-06-01T02:00:03")
    first = fire(daily["id"], moment)
    second = fire(daily["id"], moment + timedelta(seconds=20))
    assert first is not None and first.job is not None and second is None
    assert Job.objects.filter(origin="schedule").count() == 1
    assert first.job.output_path.endswith(f"/daily-backup-{daily['id']}-20260601-020000")
    assert [e for e, _ in recorded_events] == ["schedule.triggered"]
    assert recorded_events[0][1]["job_id"] == first.job.id


def test_overlap_skip_leaves_a_run_out_while_the_last_is_going(daily, redis_url):
    first = fire(daily["id"], at("2026-06-01T02:00"))
    skipped = fire(daily["id"], at("2026-06-02T02:00"))
    assert skipped.outcome == "skipped" and skipped.job is None
    Job.objects.filter(id=first.job_id).update(status="completed")
    assert fire(daily["id"], at("2026-06-03T02:00")).outcome == "started"


def test_overlap_allow_starts_every_run(operator_api, daily, redis_url):
    operator_api.patch(f"/schedules/{daily['id']}", {"overlap": "allow"}, format="json")
    fire(daily["id"], at("2026-06-01T02:00"))
    assert fire(daily["id"], at("2026-06-02T02:00")).outcome == "started"
    assert Job.objects.filter(origin="schedule").count() == 2


def test_a_disabled_schedule_does_not_fire(operator_api, daily, redis_url):
    operator_api.post(f"/schedules/{daily['id']}/disable")
    assert fire(daily["id"], at("2026-06-01T02:00:03")) is None


def test_retention_keeps_the_last_n_runs_output(operator_api, daily, redis_url, export_root):
    operator_api.patch(f"/schedules/{daily['id']}", {"retention": 2, "overlap": "allow"}, format="json")
    outputs = []
    for day in range(1, 5):
        run = fire(daily["id"], at(f"2026-06-0{day}T02:00"))
        outputs.append(run.job.output_path)
        Job.objects.filter(id=run.job_id).update(status="completed")
        os.makedirs(run.job.output_path)
    run_retention.apply_retention(Schedule.objects.get(id=daily["id"]))
    assert [os.path.isdir(p) for p in outputs] == [False, False, True, True]
    assert ScheduleRun.objects.filter(schedule_id=daily["id"]).count() == 4


# ---- bad expressions at every door ----

REFUSED = [
    ("61 * * * *", "invalid cron '61 * * * *': Bad minute"),
    ("0 0 * * * *", "want 5 fields"),
    ("@every 5m", "only @hourly, @daily, @weekly, @monthly, @yearly are supported"),
    ("0 0 31 2 *", "it would never fire"),
]


@pytest.mark.parametrize(("expression", "message"), REFUSED)
def test_the_admin_refuses_a_bad_cron_on_add_and_change_naming_the_field(admin_client, expression, message):
    response = admin_client.post("/admin/schedules/schedule/add/", schedule_admin_form(cron=expression))
    assert response.status_code == 200 and not Schedule.objects.exists()
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["cron"] and message in errors["cron"][0]
    admin_client.post("/admin/schedules/schedule/add/", schedule_admin_form())
    schedule = Schedule.objects.get()
    response = admin_client.post(
        f"/admin/schedules/schedule/{schedule.id}/change/", schedule_admin_form(cron=expression)
    )
    assert message in response.context["adminform"].form.errors["cron"][0]
    assert Schedule.objects.get().cron == "0 2 * * *"


def test_an_admin_edit_of_the_expression_moves_the_next_run_the_tick_fires(admin_client, redis_url):
    admin_client.post("/admin/schedules/schedule/add/", schedule_admin_form(cron="0 2 * * *"))
    schedule = Schedule.objects.get()
    admin_client.post(
        f"/admin/schedules/schedule/{schedule.id}/change/", schedule_admin_form(cron="30 4 * * *")
    )
    schedule.refresh_from_db()
    slot = schedule.next_run_at
    assert (slot.hour, slot.minute) == (4, 30)
    assert firing.tick(slot - timedelta(seconds=1)) == []
    (run,) = firing.tick(slot + timedelta(seconds=5))
    assert run.slot == slot and run.outcome == "started"


@pytest.mark.parametrize(("expression", "message"), REFUSED)
def test_import_config_refuses_a_bad_cron_in_one_line_naming_the_field(tmp_path, db, expression, message):
    from schedules.config_import import import_config

    config = tmp_path / "config.yaml"
    config.write_text(f'schedules:\n  - name: nightly\n    cron: "{expression}"\n    vm: /dc/vm/prod/web01\n')
    report = import_config(config)
    assert len(report.failed) == 1 and report.failed[0].startswith("schedule nightly: cron: invalid cron")
    assert message in report.failed[0] and "\n" not in report.failed[0]
    assert not Schedule.objects.exists()


# ---- upgrade ----


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_removes_the_per_schedule_beat_tasks_and_starts_the_tick_from_now():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    before = [("schedules", "0002_schedule_failures_and_bounds")]
    after = [("schedules", "0003_one_tick_fires_schedules")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    crontab = old.get_model("django_celery_beat", "CrontabSchedule").objects.create(
        minute="0", hour="3", day_of_week="7", timezone="UTC"
    )
    kept = old.get_model("django_celery_beat", "PeriodicTask").objects.create(
        name="someone else's", task="exports.tasks.purge_old_jobs", crontab=crontab
    )
    task = old.get_model("django_celery_beat", "PeriodicTask").objects.create(
        name="hypersdk schedule sched-old", task="schedules.tasks.fire_schedule", crontab=crontab
    )
    old.get_model("schedules", "Schedule").objects.create(
        id="sched-old", name="old", cron="0 3 * * 7", periodic_task=task
    )
    upgraded_at = timezone.now()
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps
    tasks_left = new.get_model("django_celery_beat", "PeriodicTask").objects.values_list("id", flat=True)
    assert list(tasks_left) == [kept.id]
    assert new.get_model("schedules", "Schedule").objects.get(id="sched-old").fired_through >= upgraded_at
