"""Schedule names are labels, never path components; a schedule whose job can no longer be
built is shown failing with the reason and announced, never a loop of worker tracebacks."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from hypothesis import example, given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from cli.backends import CLIError, LocalBackend
from exports.models import Job, VCenter
from hypersdk.lib import events
from schedules import run_retention
from schedules.models import Schedule, ScheduleRun
from tests.conftest import fire_at
from tests.fuzzing import FUZZ
from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db

RUN_NAME = re.compile(r"^(?:[a-z0-9-]+-)?sched-[A-Za-z0-9_-]+-\d{8}-\d{6}(?:-\d{6})?$")


@pytest.fixture
def roots(tmp_path, settings) -> dict[str, Path]:
    """Two export roots side by side: a run of a schedule writing to root/out must stay there."""
    root, other = tmp_path / "root", tmp_path / "other-root"
    root.mkdir()
    other.mkdir()
    settings.HYPERSDK_EXPORT_ROOTS = [str(root), str(other)]
    settings.DATA_DIR = tmp_path / "data"
    return {"root": root, "other": other, "out": root / "out"}


def create(operator_api: APIClient, name: str, **fields):
    body = {"name": name, "cron": "0 2 * * *", "vm_path": "/dc/vm/prod/web01", **fields}
    return operator_api.post("/schedules", body, format="json")


# ---- names -------------------------------------------------------------------------------

HOSTILE_LABELS = [
    "../../../etc/x",
    "/etc/x",
    "x/../../other-root/escape",
    "..",
    "🙂" * 100,
    "ünïcödé nightly",
    "a" * 128,
]


@pytest.mark.parametrize("name", HOSTILE_LABELS)
def test_a_name_is_a_label_and_every_run_stays_directly_in_the_output(operator_api, roots, redis_url, name):
    created = create(operator_api, name, output_path=str(roots["out"]))
    assert created.status_code == 201, created.content
    assert created.json()["name"] == name
    triggered = operator_api.post(f"/schedules/{created.json()['id']}/trigger")
    assert triggered.status_code == 202, triggered.content
    job = Job.objects.get(id=triggered.json()["job_id"])
    run_dir = Path(job.output_path)
    assert run_dir.parent == roots["out"], job.output_path
    assert RUN_NAME.match(run_dir.name) and created.json()["id"] in run_dir.name, run_dir.name
    assert list(roots["other"].iterdir()) == []


def test_the_run_directory_is_the_name_slug_the_id_and_the_slot(operator_api, roots, redis_url):
    schedule_id = create(operator_api, "Daily Backup: web01/prod", output_path=str(roots["out"])).json()["id"]
    run = fire_at(schedule_id, datetime(2026, 6, 1, 2, 0, 5, tzinfo=ZoneInfo("UTC")))
    assert Path(run.job.output_path).name == f"daily-backup-web01-prod-{schedule_id}-20260601-020000"


@pytest.mark.parametrize(
    "name",
    ["a\tb", "a\nb", "night\rly", "x\u200by", "\u202egnp.exe", "a\u2028b", "\x1b[2J", "", "   ", "a" * 129],
)
def test_names_with_control_or_invisible_characters_are_a_400_on_name(operator_api, roots, name):
    response = create(operator_api, name)
    assert response.status_code == 400, response.content
    assert response.json()["name"], response.json()
    assert not Schedule.objects.exists()


def test_names_are_checked_on_update_too(operator_api, roots):
    schedule_id = create(operator_api, "nightly").json()["id"]
    response = operator_api.patch(f"/schedules/{schedule_id}", {"name": "night\nly"}, format="json")
    assert response.status_code == 400 and response.json()["name"]
    assert Schedule.objects.get().name == "nightly"


def test_fuzzed_names_are_refused_on_name_or_run_inside_the_output(operator_api, roots, redis_url):
    @FUZZ
    @given(name=st.text(max_size=140))
    @example(name="../" * 40 + "etc/passwd")
    @example(name="\x00")
    def check(name: str) -> None:
        created = create(operator_api, name, output_path=str(roots["out"]))
        if created.status_code == 400:
            assert created.json()["name"], created.json()
            assert not Schedule.objects.exists()
            return
        assert created.status_code == 201, (name, created.content)
        triggered = operator_api.post(f"/schedules/{created.json()['id']}/trigger")
        assert triggered.status_code == 202, (name, triggered.content)
        output = Path(Job.objects.get(id=triggered.json()["job_id"]).output_path)
        assert output.parent == roots["out"] and RUN_NAME.match(output.name), (name, output)
        Schedule.objects.all().delete()
        Job.objects.all().delete()

    check()


def test_retention_removes_only_this_schedules_run_directories(operator_api, roots, redis_url):
    body = {"output_path": str(roots["out"]), "retention": 1, "overlap": "allow"}
    schedule_id = create(operator_api, "../../etc/x", **body).json()["id"]
    outputs = []
    for day in (1, 2):
        run = fire_at(schedule_id, datetime(2026, 6, day, 2, tzinfo=ZoneInfo("UTC")))
        Path(run.job.output_path).mkdir(parents=True)
        Job.objects.filter(id=run.job_id).update(status="completed")
        outputs.append(Path(run.job.output_path))
    # A directory of another schedule's in the same place: not this schedule's to remove.
    foreign = roots["out"] / "x-sched-other-20260601-020000"
    foreign.mkdir()
    run_retention.apply_retention(Schedule.objects.get(id=schedule_id))
    assert [path.is_dir() for path in outputs] == [False, True] and foreign.is_dir()


# ---- a schedule whose job can no longer be built ------------------------------------------


@pytest.fixture
def recorded_events():
    seen: list[tuple[str, dict]] = []

    def record(event: str, data: dict) -> None:
        seen.append((event, data))

    events.subscribe(record)
    yield seen
    events._subscribers.remove(record)


@pytest.fixture
def orphaned(operator_api, roots) -> str:
    """A schedule on a vCenter that has since been deleted."""
    vcenter = VCenter.objects.create(name="vc-gone", url="https://vc.example/sdk", username="u")
    response = create(operator_api, "nightly", vcenter="vc-gone", output_path=str(roots["out"]))
    assert response.status_code == 201, response.content
    vcenter.delete()
    return response.json()["id"]


def test_a_firing_that_cannot_build_its_job_marks_the_schedule_failing(
    operator_api, orphaned, recorded_events, django_capture_on_commit_callbacks
):
    slot = datetime(2026, 6, 1, 2, tzinfo=ZoneInfo("UTC"))
    with django_capture_on_commit_callbacks(execute=True):
        # Beat's tick, a day apart: no exception, no job, a failed run each time.
        assert fire_at(orphaned, slot - timedelta(days=1)).outcome == ScheduleRun.Outcome.FAILED
        run = fire_at(orphaned, slot)
    assert run.outcome == ScheduleRun.Outcome.FAILED and run.job is None and "vcenter" in run.error
    shown = operator_api.get(f"/schedules/{orphaned}").json()
    assert shown["failing"] is True and shown["enabled"] is True and shown["run_count"] == 0
    assert shown["failure_reason"].startswith("vcenter: ") and shown["failing_since"]
    listed = operator_api.get("/schedules").json()["results"][0]
    assert (listed["failing"], listed["failure_reason"]) == (True, shown["failure_reason"])
    assert not Job.objects.exists()
    failures = [data for event, data in recorded_events if event == "job.failed"]
    assert len(failures) == 2 and all(data["schedule_id"] == orphaned for data in failures)
    assert "cannot start its job: vcenter: " in failures[0]["error"]


def test_job_failed_reaches_a_subscribed_webhook(orphaned, django_capture_on_commit_callbacks):
    from webhooks import fanout

    events.subscribe(fanout.on_event)  # another module's test may have cleared the subscribers
    webhook = Webhook(url="http://127.0.0.1:9/hook", events=["job.failed"])
    webhook.set_new_secret()
    webhook.save()
    with django_capture_on_commit_callbacks(execute=True):
        fire_at(orphaned, datetime(2026, 6, 1, 2, tzinfo=ZoneInfo("UTC")))
    sent = WebhookDelivery.objects.get(webhook=webhook)
    assert sent.event == "job.failed"
    data = sent.payload["data"]
    assert data["schedule"] == {"id": orphaned, "name": "nightly"} and data["state"] == "failed"
    assert data["job_id"] is None and "vcenter" in data["error"]


def test_trigger_on_a_failing_schedule_is_a_409_with_the_reason(operator_api, orphaned):
    response = operator_api.post(f"/schedules/{orphaned}/trigger")
    assert response.status_code == 409, response.content
    assert response.json()["detail"].startswith(
        f"schedule nightly ({orphaned}) cannot start its job: vcenter: "
    )
    assert operator_api.get(f"/schedules/{orphaned}").json()["failing"] is True


def test_trigger_on_a_failing_schedule_is_a_one_line_cli_error(orphaned):
    with pytest.raises(CLIError, match=f"^schedule nightly \\({orphaned}\\) cannot start its job: vcenter: "):
        LocalBackend().trigger_schedule(orphaned)
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("hyperctl", "schedules", "trigger", orphaned, stdout=out, stderr=err)
    assert exited.value.code == 1
    assert err.getvalue().startswith("error: schedule nightly") and "Traceback" not in err.getvalue()


def test_the_cli_list_shows_a_failing_schedule_with_its_reason(orphaned):
    fire_at(orphaned, datetime(2026, 6, 1, 2, tzinfo=ZoneInfo("UTC")))
    out = StringIO()
    call_command("hyperctl", "schedules", "list", stdout=out, stderr=StringIO())
    lines = out.getvalue().splitlines()
    assert "yes, FAILING" in lines[1]
    assert lines[-1].startswith(f"{orphaned} (nightly) is failing: vcenter: ")


def test_the_admin_trigger_action_reports_the_reason_instead_of_a_500(orphaned, admin_client):
    response = admin_client.post(
        "/admin/schedules/schedule/",
        {"action": "trigger", "_selected_action": [orphaned]},
        follow=True,
    )
    assert response.status_code == 200
    assert "cannot start its job: vcenter: " in response.content.decode()


def test_the_dashboard_shows_failing_and_its_run_now_answers_with_the_reason(orphaned, admin_client):
    response = admin_client.post(f"/ui/schedules/{orphaned}/trigger/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "cannot start its job: vcenter: " in response.content.decode()
    page = admin_client.get("/ui/schedules/").content.decode()
    assert "failing" in page and "vcenter: " in page


def test_an_edit_that_fixes_the_template_clears_failing_and_the_next_run_starts(
    operator_api, orphaned, redis_url
):
    fire_at(orphaned, datetime(2026, 6, 1, 2, tzinfo=ZoneInfo("UTC")))
    # Changing only the cron leaves the vCenter missing: still failing.
    assert operator_api.patch(f"/schedules/{orphaned}", {"cron": "0 3 * * *"}, format="json").json()[
        "failing"
    ]
    fixed = operator_api.patch(f"/schedules/{orphaned}", {"vcenter": None}, format="json").json()
    assert fixed["failing"] is False and fixed["failure_reason"] is None
    run = fire_at(orphaned, datetime(2026, 6, 2, 3, tzinfo=ZoneInfo("UTC")) + timedelta(seconds=1))
    assert run.outcome == ScheduleRun.Outcome.STARTED and run.job is not None
