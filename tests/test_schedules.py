"""Schedules: cron and DST, beat's PeriodicTask kept in step, the API, firing once per slot."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from api_tokens.service import issue_token
from exports.models import Job
from hypersdk import events
from hypersdk.permissions import grant_role
from schedules import cron, service
from schedules.models import Schedule, ScheduleRun

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


def test_spring_forward_runs_a_skipped_time_at_the_end_of_the_gap_like_debian_cron():
    # 2026-03-29 02:00 → 03:00 in Berlin: 02:30 does not exist that night.
    runs = [cron.next_run("30 2 * * *", BERLIN, at("2026-03-28T12:00"))]
    runs.append(cron.next_run("30 2 * * *", BERLIN, runs[0]))
    assert [r.isoformat() for r in runs] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_fall_back_runs_a_fixed_time_once_like_debian_cron():
    # 2026-10-25 03:00 → 02:00 in Berlin: 02:30 happens twice, the job runs once.
    first = cron.next_run("30 2 * * *", BERLIN, at("2026-10-24T12:00"))
    second = cron.next_run("30 2 * * *", BERLIN, first)
    assert first.isoformat() == "2026-10-25T02:30:00+02:00"
    assert second.isoformat() == "2026-10-26T02:30:00+01:00"


def test_a_firing_belongs_to_the_last_slot_at_or_before_it():
    assert cron.slot_at("0 2 * * *", BERLIN, at("2026-01-11T02:00:07")) == at("2026-01-11T02:00")
    assert cron.slot_at("*/15 * * * *", BERLIN, at("2026-01-11T02:14:59")) == at("2026-01-11T02:00")


def test_schedules_can_be_described_for_people():
    assert cron.describe("0 9-17 * * 1-5") == "Between 09:00 AM and 05:59 PM, Monday through Friday"


# ---- API ----


@pytest.fixture
def client(db, django_user_model) -> APIClient:
    user = django_user_model.objects.create_user("operator", password="operator-pass")
    grant_role(user, "operator")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return api


@pytest.fixture
def daily(client, export_root) -> dict:
    response = client.post(
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


def test_create_registers_a_beat_periodic_task(daily):
    task = PeriodicTask.objects.get(hypersdk_schedule__id=daily["id"])
    assert task.task == "schedules.tasks.fire_schedule" and json.loads(task.args) == [daily["id"]]
    crontab = task.crontab
    assert (
        crontab.minute,
        crontab.hour,
        crontab.day_of_month,
        crontab.month_of_year,
        crontab.day_of_week,
    ) == ("0", "2", "*", "*", "*")
    assert str(crontab.timezone) == BERLIN and task.enabled


def test_list_get_put_patch_delete(client, daily):
    assert [s["id"] for s in client.get("/schedules").json()["results"]] == [daily["id"]]
    assert client.get(f"/schedules/{daily['id']}").json()["name"] == "daily-backup"
    patched = client.patch(f"/schedules/{daily['id']}", {"cron": "@hourly"}, format="json").json()
    assert patched["cron"] == "0 * * * *" and patched["vm_path"] == "/dc/vm/prod/web01"
    assert PeriodicTask.objects.get(hypersdk_schedule__id=daily["id"]).crontab.hour == "*"
    put = client.put(
        f"/schedules/{daily['id']}",
        {"name": "nightly", "cron": "0 3 * * *", "vm_path": "/dc/vm/prod/db01"},
        format="json",
    )
    assert (
        put.status_code == 200
        and put.json()["vm_path"] == "/dc/vm/prod/db01"
        and put.json()["name"] == "nightly"
    )
    assert client.delete(f"/schedules/{daily['id']}").status_code == 204
    assert (
        not Schedule.objects.exists()
        and not PeriodicTask.objects.filter(task="schedules.tasks.fire_schedule").exists()
    )


def test_enable_and_disable_reach_beat(client, daily):
    disabled = client.post(f"/schedules/{daily['id']}/disable").json()
    assert disabled["enabled"] is False and disabled["next_run_at"] is None
    assert not PeriodicTask.objects.get(hypersdk_schedule__id=daily["id"]).enabled
    assert client.post(f"/schedules/{daily['id']}/enable").json()["enabled"] is True
    assert PeriodicTask.objects.get(hypersdk_schedule__id=daily["id"]).enabled


def test_trigger_starts_a_job_now_without_moving_the_next_run(client, daily, export_root, redis_url):
    before = client.get(f"/schedules/{daily['id']}").json()["next_run_at"]
    response = client.post(f"/schedules/{daily['id']}/trigger")
    assert response.status_code == 202
    job = Job.objects.get(id=response.json()["job_id"])
    assert job.origin == "schedule" and job.vm_path == "/dc/vm/prod/web01"
    assert job.output_path.startswith(f"{export_root}/web01/daily-backup-{daily['id']}-")
    after = client.get(f"/schedules/{daily['id']}").json()
    assert after["next_run_at"] == before and after["run_count"] == 1 and after["last_job"] == job.id


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"cron": "0 25 * * *"}, "cron", "invalid cron '0 25 * * *'"),
        ({"cron": "* * *"}, "cron", "want 5 fields"),
        ({"cron": "61 * * * *"}, "cron", "invalid cron '61 * * * *'"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"name": "daily-backup"}, "name", "already exists"),
        ({"vm_path": None}, "vm_path", "may not be null"),
        ({"output_path": "/etc"}, "output_path", "export roots"),
    ],
)
def test_bad_schedules_are_400_and_nothing_changes(client, daily, body, field, message):
    base = {"name": "other", "cron": "0 3 * * *", "vm_path": "/dc/vm/prod/db01"}
    response = client.post("/schedules", {**base, **body}, format="json")
    assert response.status_code == 400
    assert any(message in error for error in response.json()[field]), response.json()
    assert (
        Schedule.objects.count() == 1
        and PeriodicTask.objects.filter(task="schedules.tasks.fire_schedule").count() == 1
    )


def test_missing_vm_path_is_a_400(client):
    response = client.post("/schedules", {"name": "x", "cron": "@daily"}, format="json")
    assert response.status_code == 400 and "vm_path" in response.json()


def test_unknown_schedule_is_a_404(client):
    for method, path in [
        ("get", ""),
        ("put", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/enable"),
        ("post", "/disable"),
        ("post", "/trigger"),
    ]:
        assert getattr(client, method)(f"/schedules/sched-nope{path}", {}, format="json").status_code == 404


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
    first = service.fire(daily["id"], moment)
    second = service.fire(daily["id"], moment + timedelta(seconds=20))
    assert first is not None and first.job is not None and second is None
    assert Job.objects.filter(origin="schedule").count() == 1
    assert first.job.output_path.endswith(f"/daily-backup-{daily['id']}-20260601-020000")
    assert [e for e, _ in recorded_events] == ["schedule.triggered"]
    assert recorded_events[0][1]["job_id"] == first.job.id


def test_overlap_skip_leaves_a_run_out_while_the_last_is_going(daily, redis_url):
    first = service.fire(daily["id"], at("2026-06-01T02:00"))
    skipped = service.fire(daily["id"], at("2026-06-02T02:00"))
    assert skipped.outcome == "skipped" and skipped.job is None
    Job.objects.filter(id=first.job_id).update(status="completed")
    assert service.fire(daily["id"], at("2026-06-03T02:00")).outcome == "started"


def test_overlap_allow_starts_every_run(client, daily, redis_url):
    client.patch(f"/schedules/{daily['id']}", {"overlap": "allow"}, format="json")
    service.fire(daily["id"], at("2026-06-01T02:00"))
    assert service.fire(daily["id"], at("2026-06-02T02:00")).outcome == "started"
    assert Job.objects.filter(origin="schedule").count() == 2


def test_a_disabled_schedule_does_not_fire(client, daily, redis_url):
    client.post(f"/schedules/{daily['id']}/disable")
    assert service.fire(daily["id"], timezone.now()) is None


def test_retention_keeps_the_last_n_runs_output(client, daily, redis_url, export_root):
    client.patch(f"/schedules/{daily['id']}", {"retention": 2, "overlap": "allow"}, format="json")
    outputs = []
    for day in range(1, 5):
        run = service.fire(daily["id"], at(f"2026-06-0{day}T02:00"))
        outputs.append(run.job.output_path)
        Job.objects.filter(id=run.job_id).update(status="completed")
        os.makedirs(run.job.output_path)
    service.apply_retention(Schedule.objects.get(id=daily["id"]))
    assert [os.path.isdir(p) for p in outputs] == [False, False, True, True]
    assert ScheduleRun.objects.filter(schedule_id=daily["id"]).count() == 4
