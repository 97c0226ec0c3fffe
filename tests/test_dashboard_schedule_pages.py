"""The Schedules page with Django's test client: create, edit, delete, the cron preview, the
last run's result, and who may change what."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from dashboard import schedule_pages
from dashboard.forms import FORM_OPTIONS
from exports.models import Job
from schedules import service as schedules
from schedules.models import Schedule
from tests.factories import make_job

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
WEB01 = "/dc/vm/prod/web01"


def schedule_form(**overrides) -> dict:
    """The POST body of the schedule form: a nightly export of web01 at 02:00 Berlin time."""
    form = {
        "name": "nightly",
        "cron": "0 2 * * *",
        "timezone": "Europe/Berlin",
        "enabled": "on",
        "overlap": "skip",
        "retention": "",
        "vm_path": WEB01,
        "vcenter": "",
        "output_path": "",
        "target_format": "qcow2",
        "hyper2kvm_path": "",
        "conversion_timeout": "90",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


@pytest.fixture
def nightly():
    return schedules.create_schedule(
        {"name": "nightly", "cron": "0 2 * * *", "timezone": "UTC", "vm_path": WEB01, "format": "ova"}
    )


# ---- create ---------------------------------------------------------------------------------


def test_the_new_schedule_form_shows_every_option_the_form_declares(operator_browser):
    # Laid out by hand, as the converter is: an option given a form field but no template line
    # would be missing here while the API and the CLIs had it.
    page = operator_browser.get("/ui/schedules/new/").content.decode()
    missing = [
        option.form.name
        for option in FORM_OPTIONS
        if option.schedulable and f'name="{option.form.name}"' not in page
    ]
    assert missing == []
    # What a schedule may not carry is not offered (Option.schedulable: define_uri).
    assert [o.name for o in FORM_OPTIONS if not o.schedulable] == ["define_uri"]
    assert 'name="define_uri"' not in page
    for label in ("Cron", "Time zone", "VM Path", "Target Format", "Auto-convert", "Compress", "Verify"):
        assert f">{label}<" in page


def test_the_new_schedule_form_starts_from_the_api_s_defaults(operator_browser, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    page = operator_browser.get("/ui/schedules/new/").content.decode()
    assert re.search(r'<input type="radio" name="overlap" value="skip"[^>]* checked>', page)
    assert re.search(r'<input type="checkbox" name="enabled"[^>]* checked>', page)
    assert 'name="timezone" value="Europe/Berlin"' in page


def test_creating_a_schedule_stores_it_with_its_job_template_and_returns_to_the_list(operator_browser):
    body = schedule_form(auto_convert="on", verify="on", compress="on")
    response = operator_browser.post("/ui/schedules/new/", body)
    assert response.status_code == 302 and response["Location"] == "/ui/schedules/"
    schedule = Schedule.objects.get(name="nightly")
    assert (schedule.cron, schedule.timezone, schedule.enabled) == ("0 2 * * *", "Europe/Berlin", True)
    template = schedule.job_template
    assert template["vm_path"] == WEB01 and template["manifest_target"] == "qcow2"
    assert template["convert"] and template["verify"] and template["compress"] and template["format"] == "ova"
    assert template["conversion_timeout"] == 90  # minutes, as the API counts them
    listing = operator_browser.get("/ui/schedules/").content.decode()
    assert "Created schedule nightly." in listing and "At 02:00 AM" in listing


def test_an_htmx_create_is_sent_to_the_list(operator_browser):
    response = operator_browser.post("/ui/schedules/new/", schedule_form(), **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == "/ui/schedules/"
    assert Schedule.objects.filter(name="nightly").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cron", "0 25 * * *", "invalid cron &#x27;0 25 * * *&#x27;"),
        ("cron", "0 0 31 2 *", "it would never fire"),
        ("timezone", "Mars/Olympus", "unknown time zone"),
        ("vm_path", "web01", "give the VM&#x27;s inventory path"),
        ("name", "", "This field may not be blank."),
        ("output_path", "/etc/hypersdk", "export root"),
        ("conversion_timeout", "soon", "invalid duration"),
        ("retention", "0", "greater than or equal to 1"),
        ("retention", "100001", "less than or equal to 100000"),
        ("retention", "many", "Enter a whole number."),
    ],
)
def test_a_bad_schedule_is_a_422_with_the_error_beside_its_field(operator_browser, field, value, message):
    response = operator_browser.post("/ui/schedules/new/", schedule_form(**{field: value}), **HTMX)
    assert response.status_code == 422
    page = response.content.decode()
    assert f'id="id_{field}-error"' in page and message in page
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"content_type": "application/json", "data": '{"name": "nightly", "cron": "0 2 * * *"}'}],
    ids=["empty", "json"],
)
def test_a_create_with_no_form_fields_is_a_422_with_field_errors(operator_browser, body):
    response = operator_browser.post("/ui/schedules/new/", **body)
    assert response.status_code == 422
    page = response.content.decode()
    assert 'id="id_overlap-error">This field is required.<' in page
    assert not Schedule.objects.exists()


def test_a_taken_name_is_refused_as_the_api_refuses_it(operator_browser, nightly):
    response = operator_browser.post("/ui/schedules/new/", schedule_form())
    assert response.status_code == 422
    assert "a schedule named &#x27;nightly&#x27; already exists" in response.content.decode()
    assert Schedule.objects.count() == 1


# ---- edit -----------------------------------------------------------------------------------


def test_the_edit_form_is_filled_with_the_schedule(operator_browser, nightly):
    page = operator_browser.get(f"/ui/schedules/{nightly.id}/edit/").content.decode()
    assert 'value="nightly"' in page and 'value="0 2 * * *"' in page and f'value="{WEB01}"' in page
    assert 'value="120"' in page  # the conversion timeout's default, in minutes


def test_editing_changes_the_schedule_and_keeps_what_the_form_does_not_show(operator_browser, nightly):
    body = schedule_form(cron="30 4 * * 1-5", timezone="UTC", conversion_timeout="2h")
    response = operator_browser.post(f"/ui/schedules/{nightly.id}/edit/", body)
    assert response.status_code == 302
    schedule = Schedule.objects.get(id=nightly.id)
    assert schedule.cron == "30 4 * * 1-5" and schedule.job_template["conversion_timeout"] == 120
    assert schedule.job_template["format"] == "ova"  # set through the API; the form has no field for it
    assert "Saved schedule nightly." in operator_browser.get("/ui/schedules/").content.decode()


def test_a_bad_edit_changes_nothing(operator_browser, nightly):
    response = operator_browser.post(f"/ui/schedules/{nightly.id}/edit/", schedule_form(cron="* *"))
    assert response.status_code == 422 and "want 5 fields" in response.content.decode()
    assert Schedule.objects.get(id=nightly.id).cron == "0 2 * * *"


def test_editing_an_unknown_schedule_is_a_404(operator_browser):
    assert operator_browser.get("/ui/schedules/sched-nope/edit/").status_code == 404


# ---- delete ---------------------------------------------------------------------------------


def test_without_javascript_delete_asks_on_a_page_then_deletes(operator_browser, nightly):
    page = operator_browser.get(f"/ui/schedules/{nightly.id}/delete/").content.decode()
    assert "Delete schedule nightly?" in page and Schedule.objects.filter(id=nightly.id).exists()
    response = operator_browser.post(f"/ui/schedules/{nightly.id}/delete/")
    assert response.status_code == 302 and not Schedule.objects.filter(id=nightly.id).exists()
    assert "Deleted schedule nightly." in operator_browser.get("/ui/schedules/").content.decode()


def test_an_htmx_delete_asks_in_the_browser_and_removes_the_row(operator_browser, nightly):
    row = operator_browser.get("/ui/schedules/").content.decode()
    assert 'hx-confirm="Delete the schedule nightly?' in row
    response = operator_browser.post(f"/ui/schedules/{nightly.id}/delete/", **HTMX)
    assert response.status_code == 200 and response.content == b""
    assert not Schedule.objects.exists()


def test_deleting_an_unknown_schedule_is_a_404(operator_browser):
    assert operator_browser.post("/ui/schedules/sched-nope/delete/").status_code == 404


# ---- the cron preview -------------------------------------------------------------------------


@pytest.fixture
def before_berlin_spring_forward(monkeypatch):
    """Now is noon UTC the day before Berlin's clocks go from 02:00 to 03:00 (2027-03-28)."""
    monkeypatch.setattr(schedule_pages, "now", lambda: datetime(2027, 3, 27, 12, tzinfo=UTC))


def test_the_preview_reads_the_cron_in_words_and_lists_the_next_five_runs_in_its_zone(
    operator_browser, before_berlin_spring_forward
):
    response = operator_browser.get(
        "/ui/schedules/preview/", {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}, **HTMX
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "At 02:30 AM" in page and "Europe/Berlin" in page
    # 02:30 does not exist on the 28th: Debian cron runs a fixed time at the end of the gap.
    assert [line.split(">")[1] for line in page.split("<time")[1:]] == [
        "Sun 2027-03-28 03:00 +0200</time",
        "Mon 2027-03-29 02:30 +0200</time",
        "Tue 2027-03-30 02:30 +0200</time",
        "Wed 2027-03-31 02:30 +0200</time",
        "Thu 2027-04-01 02:30 +0200</time",
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"cron": "0 25 * * *", "timezone": "UTC"}, "invalid cron &#x27;0 25 * * *&#x27;: Bad hour"),
        ({"cron": "0 2 * *", "timezone": "UTC"}, "want 5 fields"),
        ({"cron": "0 2 * * *", "timezone": "Nowhere/Land"}, "unknown time zone &#x27;Nowhere/Land&#x27;"),
    ],
)
def test_a_bad_cron_in_the_preview_is_the_one_line_field_error(operator_browser, query, message):
    response = operator_browser.get("/ui/schedules/preview/", query, **HTMX)
    assert response.status_code == 422
    page = response.content.decode()
    assert 'class="field-error"' in page and message in page and "<time" not in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"cron": "1 " * 5000}, "cron: at most 128 characters"),
        ({"cron": "@daily", "timezone": "A" * 5000}, "timezone: at most 64"),
    ],
)
def test_an_oversized_preview_request_is_refused_without_echoing_it(operator_browser, query, message):
    response = operator_browser.get("/ui/schedules/preview/", query, **HTMX)
    assert response.status_code == 422
    assert message in response.content.decode() and len(response.content) < 1000


def test_an_empty_cron_previews_nothing(operator_browser):
    response = operator_browser.get("/ui/schedules/preview/", {"cron": " "}, **HTMX)
    assert response.status_code == 200 and "<time" not in response.content.decode()


# ---- the last run -------------------------------------------------------------------------------


def test_each_schedule_shows_its_last_run_status_and_links_its_job(operator_browser, nightly):
    job = make_job(WEB01, status=Job.Status.FAILED)
    Schedule.objects.filter(id=nightly.id).update(last_job=job, last_run_at=timezone.now())
    page = operator_browser.get("/ui/schedules/").content.decode()
    cell = page.split('data-field="last-run">')[1].split("</td>")[0]
    assert f'href="/ui/jobs/{job.id}/"' in cell and 'class="badge badge-failed">failed<' in cell


# ---- permissions --------------------------------------------------------------------------------


def test_a_viewer_sees_schedules_but_no_buttons_to_change_them(viewer_browser, nightly):
    page = viewer_browser.get("/ui/schedules/").content.decode()
    assert "nightly" in page and "New schedule" not in page and ">Delete<" not in page and "Edit" not in page
    form = viewer_browser.get("/ui/schedules/new/").content.decode()
    assert '<form method="post" action="/ui/schedules/new/"' not in form and "viewer role" in form
    assert viewer_browser.get("/ui/schedules/preview/", {"cron": "0 2 * * *"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ui/schedules/new/", schedule_form(name="other")),
        ("/ui/schedules/{id}/edit/", schedule_form(cron="0 3 * * *")),
        ("/ui/schedules/{id}/delete/", {}),
    ],
)
def test_a_viewer_cannot_create_edit_or_delete(viewer_browser, nightly, path, body):
    response = viewer_browser.post(path.format(id=nightly.id), body, **HTMX)
    assert response.status_code == 403
    assert list(Schedule.objects.values_list("name", "cron")) == [("nightly", "0 2 * * *")]


def test_a_form_post_without_its_csrf_token_is_refused(operator, nightly):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(f"/ui/schedules/{nightly.id}/delete/").status_code == 403
    assert Schedule.objects.filter(id=nightly.id).exists()
