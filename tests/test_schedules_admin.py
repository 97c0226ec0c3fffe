"""Schedules in Django's admin: the form validates as the API does, and the list's actions
(enable, disable, trigger, delete) go through the schedule service like every other door."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from exports.models import Job
from schedules.models import Schedule, ScheduleRun
from tests.factories import schedule_admin_form

pytestmark = pytest.mark.django_db

LIST = "/admin/schedules/schedule/"


def schedule(name: str, *, enabled: bool = True, **fields) -> Schedule:
    """A schedule whose tick cursor is a day behind, as one the tick last saw yesterday."""
    fields = {
        "cron": "0 2 * * *",
        "timezone": "UTC",
        "job_template": {"vm_path": "/dc/vm/prod/web01"},
        **fields,
    }
    return Schedule.objects.create(
        name=name, enabled=enabled, fired_through=timezone.now() - timedelta(days=1), **fields
    )


def act(admin_client, action: str, *schedules: Schedule):
    return admin_client.post(
        LIST, {"action": action, "_selected_action": [s.id for s in schedules]}, follow=True
    )


def test_adding_a_schedule_in_the_admin_saves_it_in_its_zone_from_now_on(admin_client):
    before = timezone.now()
    response = admin_client.post(
        f"{LIST}add/", schedule_admin_form(name="tokyo", cron="@daily", timezone="Asia/Tokyo"), follow=True
    )
    assert response.status_code == 200
    saved = Schedule.objects.get(name="tokyo")
    assert (saved.cron, saved.timezone, saved.enabled) == ("0 0 * * *", "Asia/Tokyo", True)
    assert saved.job_template == {"vm_path": "/dc/vm/prod/web01"}
    assert saved.fired_through >= before  # slots start now: nothing before it fires or is missed
    next_run = saved.next_run_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert before < next_run <= before + timedelta(days=1)
    assert (next_run.hour, next_run.minute) == (0, 0)  # midnight in Tokyo, not in UTC


def test_the_changelist_shows_the_next_run_in_the_schedules_own_zone(admin_client):
    schedule("tokyo", timezone="Asia/Tokyo")
    page = admin_client.get(LIST).content.decode()
    assert re.search(r"\d{4}-\d\d-\d\d 02:00 \+0900 Asia/Tokyo", page), "the next run, in Tokyo time"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"cron": "61 * * * *"}, "cron", "Bad minute"),
    ],
)
def test_the_form_names_the_field_it_refuses(admin_client, fields, field, message):
    response = admin_client.post(f"{LIST}add/", schedule_admin_form(**fields))
    assert response.status_code == 200 and not Schedule.objects.exists()
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and message in errors[field][0]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{"output_path": "/x"}', "vm_path"),
        ('{"vm_path": "/dc/vm/prod/web01", "format": "floppy"}', "format"),
        ("[1, 2]", "job template: must be a JSON object"),
    ],
)
def test_the_form_validates_the_job_template_as_the_api_does(admin_client, template, message):
    response = admin_client.post(f"{LIST}add/", schedule_admin_form(job_template=template))
    assert response.status_code == 200 and not Schedule.objects.exists()
    errors = response.context["adminform"].form.non_field_errors()
    assert errors and all(error.startswith("job template: ") for error in errors)
    assert any(message in error for error in errors) and not any("ErrorDetail" in error for error in errors)


def test_disable_then_enable_actions_restart_the_slots_from_now(admin_client):
    nightly, weekly = schedule("nightly"), schedule("weekly")
    act(admin_client, "disable", nightly, weekly)
    assert list(Schedule.objects.filter(enabled=True)) == []

    before = timezone.now()
    response = act(admin_client, "enable", nightly)
    assert response.status_code == 200
    nightly.refresh_from_db()
    weekly.refresh_from_db()
    assert (nightly.enabled, weekly.enabled) == (True, False)
    # Enabled through the service: the cursor moves to now, so the slot missed while it was
    # disabled (02:00 since yesterday) is neither fired nor counted missed.
    assert nightly.fired_through >= before


def test_the_trigger_action_starts_each_selected_schedules_job(admin_client, redis_url):
    nightly, weekly = schedule("nightly"), schedule("weekly", enabled=False)
    response = act(admin_client, "trigger", nightly, weekly)
    assert response.status_code == 200, [str(m) for m in response.context["messages"]]
    runs = ScheduleRun.objects.filter(outcome=ScheduleRun.Outcome.TRIGGERED)
    assert sorted(run.schedule.name for run in runs) == ["nightly", "weekly"]
    started = {run.job_id for run in runs}
    assert len(started) == 2 and Job.objects.filter(id__in=started, status="pending").count() == 2
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("started ") and set(message.removeprefix("started ").split(", ")) == started
    nightly.refresh_from_db()
    assert nightly.next_run_at.hour == 2  # a trigger does not move the next run


def test_deleting_from_the_list_and_the_change_page_removes_the_schedules(admin_client):
    nightly, weekly, kept = schedule("nightly"), schedule("weekly"), schedule("kept")
    response = admin_client.post(
        LIST, {"action": "delete_selected", "_selected_action": [nightly.id, weekly.id], "post": "yes"}
    )
    assert response.status_code == 302
    assert list(Schedule.objects.values_list("name", flat=True)) == ["kept"]
    response = admin_client.post(f"{LIST}{kept.id}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Schedule.objects.exists()
