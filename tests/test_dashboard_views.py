"""The dashboard's pages with Django's test client: login, converter, jobs, job page, schedules."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from exports import converters, lifecycle
from exports.models import Job, JobLog
from hypersdk.lib.permissions import grant_role
from schedules import firing
from schedules import service as schedules
from tests.factories import make_job

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


WEB01 = "/dc/vm/prod/web01"


@pytest.fixture
def operator(operator, client):
    """The shared operator, logged in on this test's dashboard client."""
    client.force_login(operator)
    return operator


def converter_form(**overrides) -> dict:
    form = {
        "vm_path": "/dc/vm/prod/web01",
        "output_dir": "",
        "target_format": "qcow2",
        "auto_convert": "on",
        "verify": "on",
        "hyper2kvm_path": "",
        "conversion_timeout": "120",
        "stream_output": "on",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


# ---- login ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/ui/jobs/", "/ui/converter/", "/ui/schedules/", "/ui/overview/status/"]
)
def test_every_page_sends_a_stranger_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/ui/login/?next={path}")


def test_an_htmx_request_without_a_session_reloads_into_the_login_page(client):
    response = client.get("/ui/overview/jobs/", HTTP_HX_CURRENT_URL="http://testserver/ui/jobs/", **HTMX)
    assert response.status_code == 401
    assert response["HX-Redirect"] == "/ui/login/?next=/ui/jobs/"


def test_a_posted_action_needs_a_login_too(client):
    job = make_job(WEB01)
    response = client.post(f"/ui/jobs/{job.id}/actions/")
    assert response.status_code == 302
    assert Job.objects.get(id=job.id).status == Job.Status.PENDING


def test_logging_in_leads_to_the_dashboard(client, django_user_model):
    grant_role(django_user_model.objects.create_user("operator", password="operator-pass"), "operator")
    response = client.post("/ui/login/", {"username": "operator", "password": "operator-pass"})
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    for tab in ("Dashboard", "Jobs", "📦 Manifest Converter"):
        assert f">{tab}</a>" in page.content.decode()


def test_a_wrong_password_is_refused_on_the_login_page(client, django_user_model):
    django_user_model.objects.create_user("operator", password="operator-pass")
    response = client.post("/ui/login/", {"username": "operator", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


# ---- Dashboard tab ---------------------------------------------------------------------------


def test_the_dashboard_shows_active_jobs_counts_and_recent_failures(client, operator):
    running = make_job("/dc/vm/prod/app01", status=Job.Status.RUNNING, percent=37.5, phase="downloading")
    make_job(
        "/dc/vm/prod/db01", status=Job.Status.FAILED, error="disk full (ENOSPC)", finished_at=timezone.now()
    )
    old = make_job("/dc/vm/prod/old01", status=Job.Status.COMPLETED)
    Job.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=3))
    page = client.get("/").content.decode()
    assert f'data-job-stream="{running.id}"' in page
    assert 'value="37.5"' in page and "37.5%" in page
    assert "disk full (ENOSPC)" in page
    counts = client.get("/ui/overview/jobs/", **HTMX)
    assert counts.status_code == 200 and "<html" not in counts.content.decode()
    assert counts.context["counts"] == [
        ("pending", 0, 0),
        ("running", 1, 1),
        ("completed", 0, 1),
        ("failed", 1, 1),
        ("cancelled", 0, 0),
    ]


def test_the_daemon_panel_lists_export_roots_and_workers(client, operator, redis_url, settings, tmp_path):
    settings.HYPERSDK_EXPORT_ROOTS = [str(tmp_path), "/nonexistent-root"]
    panel = client.get("/ui/overview/status/", **HTMX).content.decode()
    assert str(tmp_path) in panel and "does not exist" in panel
    assert "Workers alive" in panel


# ---- Manifest Converter ----------------------------------------------------------------------


def test_the_converter_tab_has_the_guide_s_two_steps(client, operator):
    page = client.get("/ui/converter/").content.decode()
    for text in (
        "Step 1: Export Configuration",
        "VM Path",
        "Output Directory",
        "QCOW2 (Recommended)",
        "RAW",
        "VDI",
        "Auto-convert",
        "Compress",
        "Verify",
        "Step 2: Conversion Options",
        "Hyper2KVM Binary Path",
        "Conversion Timeout",
        'value="120"',
        "Stream Output",
        "🚀 Start Export &amp; Conversion",
    ):
        assert text in page, text


def test_the_converter_says_which_converter_this_server_would_use(client, operator, monkeypatch, tmp_path):
    fake = tmp_path / "hyper2kvm"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert f"Detected on this server: <code>{fake}</code>" in client.get("/ui/converter/").content.decode()
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(converters, "environment_bin", lambda: "/nonexistent")
    assert "Neither hyper2kvm nor qemu-img" in client.get("/ui/converter/").content.decode()


def test_starting_a_conversion_creates_a_dashboard_job_and_shows_its_progress(client, operator, export_root):
    response = client.post(
        "/ui/converter/",
        converter_form(target_format="raw", output_dir=str(export_root / "web01"), compress="on"),
        **HTMX,
    )
    assert response.status_code == 200
    job = Job.objects.get()
    assert job.origin == Job.Origin.DASHBOARD
    assert job.output_path == str(export_root / "web01")
    assert job.options | {"hyper2kvm_path": ""} == job.options
    assert {
        k: job.options[k] for k in ("manifest", "convert", "verify", "compress", "manifest_target", "format")
    } == {
        "manifest": True,
        "convert": True,
        "verify": True,
        "compress": True,
        "manifest_target": "raw",
        "format": "ova",
    }
    assert job.options["conversion_timeout"] == 120
    page = response.content.decode()
    assert "<html" not in page  # an htmx fragment: the form and the job's panel
    assert f'data-job-stream="{job.id}"' in page and "<progress" in page
    assert f'data-job-logs="{job.id}"' in page and "submitted (dashboard)" in page
    assert response["HX-Push-Url"] == f"/ui/converter/?job={job.id}&stream=1"


def test_auto_convert_off_submits_a_manifest_only_job(client, operator):
    client.post("/ui/converter/", converter_form(auto_convert=None, verify=None, conversion_timeout="45"))
    job = Job.objects.get()
    assert job.options["manifest"] is True and job.options["convert"] is False
    assert job.options["conversion_timeout"] == 45


@pytest.mark.parametrize("typed, minutes", [("2h", 120), ("90m", 90), ("1h30m", 90), ("45s", 1)])
def test_the_conversion_timeout_reads_like_the_clis_flag(client, operator, typed, minutes):
    client.post("/ui/converter/", converter_form(conversion_timeout=typed))
    assert Job.objects.get().options["conversion_timeout"] == minutes


def test_without_javascript_the_converter_redirects_to_the_job_it_started(client, operator):
    response = client.post("/ui/converter/", converter_form(stream_output=None))
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/ui/converter/?job={job.id}&stream=0"
    page = client.get(response["Location"]).content.decode()
    assert f'data-job-stream="{job.id}"' in page and "data-job-logs" not in page


@pytest.mark.parametrize(
    "field, value, form_field, message",
    [
        ("vm_path", "web01", "vm_path", "give the VM&#x27;s inventory path"),
        ("vm_path", "", "vm_path", "This field may not be blank."),
        ("output_dir", "/etc/web01", "output_dir", "output_path must be inside one of the export roots"),
        # Read as the CLI's -conversion-timeout reads it (one parser), so its messages are the CLI's.
        ("conversion_timeout", "two hours", "conversion_timeout", "use minutes (120) or 2h, 90m, 45s"),
        ("conversion_timeout", "0", "conversion_timeout", "must be more than zero"),
        ("conversion_timeout", "\u0663", "conversion_timeout", "use minutes (120) or 2h, 90m, 45s"),
        ("conversion_timeout", "169h", "conversion_timeout", "at most 10080 minutes"),
        (
            "hyper2kvm_path",
            "/bin/sh",
            "hyper2kvm_path",
            "not a configured converter",
        ),
    ],
)
def test_converter_errors_show_inline_beside_their_field(client, operator, field, value, form_field, message):
    response = client.post("/ui/converter/", converter_form(**{field: value}), **HTMX)
    assert response.status_code == 422
    page = response.content.decode()
    assert f'id="id_{form_field}-error">' in page
    error = page.split(f'id="id_{form_field}-error">', 1)[1].split("</span>", 1)[0]
    assert message in error
    assert 'aria-invalid="true"' in page
    assert not Job.objects.exists()


# ---- Jobs tab --------------------------------------------------------------------------------


def test_the_job_history_filters_by_state_vm_and_date(client, operator):
    web = make_job("/dc/vm/prod/web01", status=Job.Status.COMPLETED)
    db = make_job("/dc/vm/prod/db01", status=Job.Status.FAILED)
    old = make_job("/dc/vm/prod/web02", status=Job.Status.COMPLETED)
    Job.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=10))

    def listed(query: str) -> set[str]:
        response = client.get(f"/ui/jobs/?{query}", **HTMX)
        assert response.status_code == 200
        return {job.id for job in response.context["page"]}

    assert listed("") == {web.id, db.id, old.id}
    assert listed("status=failed") == {db.id}
    assert listed("vm=web") == {web.id, old.id}
    today = timezone.localdate()
    assert listed(f"created_from={today.isoformat()}") == {web.id, db.id}
    assert listed(f"created_to={(today - timedelta(days=5)).isoformat()}") == {old.id}
    assert listed("status=completed&vm=web&created_from=2000-01-01") == {web.id, old.id}


def test_the_job_history_is_paginated_and_a_fragment_for_htmx(client, operator):
    for index in range(30):
        make_job(f"/dc/vm/prod/vm{index:02}")
    first = client.get("/ui/jobs/?vm=vm", **HTMX)
    assert len(first.context["page"]) == 25 and first.context["page"].paginator.num_pages == 2
    assert "<html" not in first.content.decode() and "?vm=vm&page=2" in first.content.decode()
    second = client.get("/ui/jobs/?vm=vm&page=2")
    assert len(second.context["page"]) == 5
    assert "<html" in second.content.decode()  # a full page without htmx


def test_a_bad_date_filter_is_shown_not_a_crash(client, operator):
    response = client.get("/ui/jobs/?created_from=yesterday")
    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()


def test_the_job_page_shows_manifest_report_files_and_logs(client, operator, export_root):
    output = export_root / "app01"
    output.mkdir()
    manifest = {"version": "1.0", "source": {"provider": "vsphere", "vm_name": "app01"}}
    (output / "manifest.json").write_text(json.dumps(manifest))
    conversion = {
        "converter": "qemu-img",
        "target_format": "qcow2",
        "duration_seconds": 2.5,
        "outputs": [
            {
                "disk_id": "2000",
                "source": str(output / "app01-disk1.vmdk"),
                "output": str(output / "converted/app01-disk1.qcow2"),
                "format": "qcow2",
                "size": 4096,
                "sha256": "c" * 64,
                "duration_seconds": 2.5,
            }
        ],
        "converter_report": None,
    }
    job = make_job(
        "/dc/vm/prod/app01",
        status=Job.Status.COMPLETED,
        result={
            "output_dir": str(output),
            "files": [{"name": "app01-disk1.vmdk", "size": 2048, "sha256": "a" * 64}],
            "manifest_path": str(output / "manifest.json"),
            "conversion": conversion,
        },
    )
    JobLog.objects.create(job=job, message="disk 1 of 2 downloaded")
    page = client.get(f"/ui/jobs/{job.id}/").content.decode()
    assert "&quot;vm_name&quot;: &quot;app01&quot;" in page
    assert "Converted by <strong>qemu-img</strong> to <strong>qcow2</strong>" in page
    assert "app01-disk1.vmdk" in page and "app01-disk1.qcow2" in page and "c" * 64 in page
    assert "disk 1 of 2 downloaded" in page
    assert "Cancel job" not in page


def test_a_manifest_outside_the_export_roots_is_not_read(client, operator, tmp_path):
    (tmp_path / "manifest.json").write_text('{"secret": true}')
    job = make_job(
        WEB01, status=Job.Status.COMPLETED, result={"manifest_path": str(tmp_path / "manifest.json")}
    )
    page = client.get(f"/ui/jobs/{job.id}/").content.decode()
    assert "secret" not in page and "outside the export roots" in page


def test_an_unknown_job_is_a_404(client, operator):
    assert client.get("/ui/jobs/job-nosuchjob/").status_code == 404


def test_the_cancel_button_cancels_a_pending_job(client, operator):
    job = make_job(WEB01)
    page = client.get(f"/ui/jobs/{job.id}/").content.decode()
    assert "Cancel job" in page and f'hx-post="/ui/jobs/{job.id}/actions/"' in page
    response = client.post(f"/ui/jobs/{job.id}/actions/", **HTMX)
    assert response.status_code == 200 and "Cancelled." in response.content.decode()
    assert "Cancel job" not in response.content.decode()
    assert Job.objects.get(id=job.id).status == Job.Status.CANCELLED


def test_cancelling_a_running_job_asks_its_worker(client, operator):
    job = make_job(WEB01, status=Job.Status.RUNNING)
    response = client.post(f"/ui/jobs/{job.id}/actions/", **HTMX)
    assert "Cancel requested" in response.content.decode()
    assert Job.objects.get(id=job.id).cancel_requested


def test_cancelling_a_finished_job_says_so(client, operator):
    job = make_job(WEB01, status=Job.Status.COMPLETED)
    response = client.post(f"/ui/jobs/{job.id}/actions/")
    assert response.status_code == 302
    assert "already completed" in client.get(response["Location"]).content.decode()


def test_the_live_panel_polls_only_while_the_job_is_unfinished(client, operator):
    job = make_job(WEB01, status=Job.Status.RUNNING, percent=12.0)
    lifecycle.append_log(job.id, "downloading disk 1")
    live = client.get(f"/ui/jobs/{job.id}/live/?logs=1", **HTMX).content.decode()
    assert (
        "every 2s [this.dataset.live!=&#x27;on&#x27;]" in live or "every 2s [this.dataset.live!='on']" in live
    )
    assert "downloading disk 1" in live and "12.0%" in live
    Job.objects.filter(id=job.id).update(status=Job.Status.COMPLETED)
    finished = client.get(f"/ui/jobs/{job.id}/live/", **HTMX).content.decode()
    assert "hx-trigger" not in finished and "100.0%" in finished


# ---- Schedules -------------------------------------------------------------------------------


@pytest.fixture
def nightly():
    return schedules.create_schedule(
        {"name": "nightly", "cron": "0 2 * * *", "timezone": "UTC", "vm_path": "/dc/vm/prod/web01"}
    )


def test_schedules_are_listed_with_their_next_run(client, operator, nightly):
    page = client.get("/ui/schedules/").content.decode()
    assert "nightly" in page and "0 2 * * *" in page and f'id="schedule-{nightly.id}"' in page


def test_missed_runs_show_beside_the_last_run(client, operator, nightly):
    from datetime import UTC, datetime

    # The daemon was down for three nights; the tick at noon records them missed (past the grace).
    schedules.Schedule.objects.filter(id=nightly.id).update(
        fired_through=datetime(2026, 6, 1, 12, tzinfo=UTC)
    )
    assert [run.outcome for run in firing.tick(datetime(2026, 6, 4, 12, tzinfo=UTC))] == ["missed"] * 3
    assert "(3 missed)" in client.get("/ui/schedules/").content.decode()


def test_disable_and_enable_answer_with_the_row(client, operator, nightly):
    response = client.post(f"/ui/schedules/{nightly.id}/disable/", **HTMX)
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="schedule-{nightly.id}">') and ">Enable</button>" in row
    assert not schedules.get_schedule(nightly.id).enabled
    client.post(f"/ui/schedules/{nightly.id}/enable/", **HTMX)
    assert schedules.get_schedule(nightly.id).enabled


def test_run_now_starts_a_job_and_links_it(client, operator, nightly):
    row = client.post(f"/ui/schedules/{nightly.id}/trigger/", **HTMX).content.decode()
    job = Job.objects.get()
    assert job.origin == Job.Origin.SCHEDULE
    assert f'href="/ui/jobs/{job.id}/"' in row


def test_an_unknown_schedule_action_is_a_404(client, operator, nightly):
    assert client.post(f"/ui/schedules/{nightly.id}/explode/").status_code == 404
    assert client.post("/ui/schedules/sched-nope/enable/").status_code == 404


# ---- Webhooks --------------------------------------------------------------------------------


@pytest.fixture
def receiver(receiver, settings):
    """The shared receiver, with loopback webhook targets allowed."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return receiver


def test_webhooks_are_listed_and_a_test_is_sent_from_the_page(client, operator, receiver):
    from webhooks import service as webhooks

    webhook, _ = webhooks.add_webhook(receiver.url, ["job.completed"])
    page = client.get("/ui/webhooks/").content.decode()
    assert receiver.url in page and "job.completed" in page
    row = client.post(f"/ui/webhooks/{webhook.id}/test/", **HTMX).content.decode()
    assert "Test delivered: HTTP 200" in row
    assert len(receiver.requests) == 1


def test_a_webhook_is_disabled_and_enabled_from_the_page(client, operator, receiver):
    from webhooks import service as webhooks

    webhook, _ = webhooks.add_webhook(receiver.url)
    row = client.post(f"/ui/webhooks/{webhook.id}/disable/", **HTMX).content.decode()
    assert ">Enable</button>" in row and not webhooks.get_webhook(webhook.id).enabled
    client.post(f"/ui/webhooks/{webhook.id}/enable/", **HTMX)
    assert webhooks.get_webhook(webhook.id).enabled
