"""The jobs API at the guide's paths: auth, validation with field errors, query, logs, cancel."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from exports import jobs, lifecycle
from exports.models import Job, JobLog, VCenter


def submit(operator_api, body, **kwargs):
    return operator_api.post("/jobs/submit", body, format="json", **kwargs)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/jobs/submit"),
        ("get", "/jobs/query"),
        ("get", "/jobs/job-abcdefgh"),
        ("get", "/jobs/logs/job-abcdefgh"),
        ("post", "/jobs/job-abcdefgh/cancel"),
        ("get", "/status"),
    ],
)
def test_every_endpoint_but_health_needs_a_token(db, method, path):
    assert getattr(APIClient(), method)(path).status_code == 401


def test_health_needs_nothing(db):
    response = APIClient().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_submit_one_job(operator_api, export_root):
    response = submit(
        operator_api,
        {"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "web01"), "format": "ova"},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1 and body["rejected"] == 0 and body["errors"] == []
    job = Job.objects.get(id=body["job_ids"][0])
    assert job.id.startswith("job-") and len(job.id) >= 12
    assert (job.status, job.origin, job.output_path, job.options["format"]) == (
        "pending",
        "api",
        str(export_root / "web01"),
        "ova",
    )
    assert JobLog.objects.filter(job=job).exists()


def test_submit_without_output_gets_a_default_under_the_data_dir(operator_api, settings):
    body = submit(operator_api, {"vm_path": "/dc/vm/prod/db01"}).json()
    job = Job.objects.get(id=body["job_ids"][0])
    assert job.output_path == f"{settings.DATA_DIR}/exports/db01-{job.id}"


def test_batch_accepts_the_valid_and_reports_the_rest(operator_api, export_root):
    response = submit(
        operator_api,
        {
            "jobs": [
                {"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "a")},
                {"vm_path": "/dc/vm/x", "format": "zip"},
            ]
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["errors"] == [{"index": 1, "errors": {"format": ['"zip" is not a valid choice.']}}]
    assert Job.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "vm_path", "This field is required."),
        ({"vm_path": "web01"}, "vm_path", "give the VM's inventory path, e.g. /dc/vm/prod/web01"),
        ({"vm_path": "/dc/vm/a", "format": "zip"}, "format", '"zip" is not a valid choice.'),
        (
            {"vm_path": "/dc/vm/a", "manifest_target": "vhd"},
            "manifest_target",
            '"vhd" is not a valid choice.',
        ),
        ({"vm_path": "/dc/vm/a", "colour": "red"}, "colour", "unknown field"),
        ({"vm_path": "/dc/vm/a", "vcenter": "nope"}, "vcenter", "Object with name=nope does not exist."),
        (
            {"vm_path": "/dc/vm/a", "output_path": "/etc/cron.d"},
            "output_path",
            "output_path must be inside one of the export roots",
        ),
        (
            {"vm_path": "/dc/vm/a", "hyper2kvm_path": "/bin/rm"},
            "hyper2kvm_path",
            "not a configured converter",
        ),
        (
            {"vm_path": "/dc/vm/a", "parallel": 0},
            "parallel",
            "Ensure this value is greater than or equal to 1.",
        ),
    ],
)
def test_bad_input_is_a_400_with_field_errors_and_nothing_created(operator_api, body, field, message):
    response = submit(operator_api, body)
    assert response.status_code == 400
    assert any(message in error for error in response.json()[field])
    assert Job.objects.count() == 0


def test_dot_dot_cannot_escape_an_export_root(operator_api, export_root):
    response = submit(operator_api, {"vm_path": "/dc/vm/a", "output_path": f"{export_root}/../../etc"})
    assert response.status_code == 400
    assert str(export_root.parent) in response.json()["output_path"][0]  # the roots are named


def test_malformed_json_is_a_400(operator_api):
    response = operator_api.post("/jobs/submit", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert Job.objects.count() == 0


def test_query_filters_by_status_id_and_vm_and_paginates(operator_api):
    made = jobs.submit_jobs([{"vm_path": f"/dc/vm/prod/web{i:02}"} for i in range(5)], origin="cli").job_ids
    Job.objects.filter(id=made[0]).update(status="failed", error="boom")
    failed = operator_api.get("/jobs/query", {"status": "failed"}).json()
    assert (
        failed["count"] == 1
        and failed["results"][0]["id"] == made[0]
        and failed["results"][0]["error"] == "boom"
    )
    assert (
        operator_api.get("/jobs/query", {"id": made[3]}).json()["results"][0]["vm_path"]
        == "/dc/vm/prod/web03"
    )
    assert operator_api.get("/jobs/query", {"vm": "web04"}).json()["count"] == 1
    page = operator_api.get("/jobs/query", {"page_size": 2}).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]
    assert operator_api.get("/jobs/query", {"status": "sleeping"}).status_code == 400


@pytest.mark.parametrize("status", ["", "bogus", "FAILED"])
def test_a_status_filter_outside_the_states_is_a_400_even_empty(operator_api, status):
    response = operator_api.get("/jobs/query", {"status": status})
    assert response.status_code == 400
    assert "must be one of" in response.json()["status"][0]


def test_job_details_follow_the_guides_field_names(operator_api):
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/web01", "convert": True, "manifest_target": "raw"}]
    ).job_ids[0]
    body = operator_api.get(f"/jobs/{job_id}").json()
    assert {
        "id",
        "vm_path",
        "output_path",
        "format",
        "compress",
        "manifest",
        "manifest_target",
        "convert",
        "verify",
    } <= set(body)
    assert body["progress"] == {
        "percent": 0.0, "phase": "", "current_file": "", "bytes_done": 0, "bytes_total": 0, "rate_bps": 0.0, "eta_seconds": None,
    }  # fmt: skip
    assert (body["convert"], body["manifest_target"], body["status"]) == (True, "raw", "pending")


def test_unknown_job_is_a_404(operator_api):
    assert operator_api.get("/jobs/job-nosuchjob").status_code == 404
    assert operator_api.get("/jobs/logs/job-nosuchjob").status_code == 404
    assert operator_api.post("/jobs/job-nosuchjob/cancel").status_code == 404


def test_logs_all_tail_and_since(operator_api):
    job_id = jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01"}]).job_ids[0]
    for n in range(5):
        lifecycle.append_log(job_id, f"line {n}")
    logs = operator_api.get(f"/jobs/logs/{job_id}").json()["logs"]
    assert [entry["message"] for entry in logs][-5:] == [f"line {n}" for n in range(5)]
    tail = operator_api.get(f"/jobs/logs/{job_id}", {"tail": 2}).json()["logs"]
    assert [entry["message"] for entry in tail] == ["line 3", "line 4"]
    since = operator_api.get(f"/jobs/logs/{job_id}", {"since": logs[-3]["id"]}).json()["logs"]
    assert [entry["message"] for entry in since] == ["line 3", "line 4"]
    assert operator_api.get(f"/jobs/logs/{job_id}", {"tail": "x"}).status_code == 400


@pytest.mark.parametrize("tail", ["\u0663", " 3", "+3", "1_0", "-1", "1000001", "9" * 5000])
def test_a_tail_that_is_not_ascii_digits_within_bounds_is_a_400(operator_api, tail):
    job_id = jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01"}]).job_ids[0]
    response = operator_api.get(f"/jobs/logs/{job_id}", {"tail": tail})
    assert response.status_code == 400
    assert response.json()["tail"] == ["must be an integer between 0 and 1000000"]


def test_cancel_a_pending_job_at_once_and_refuse_a_finished_one(operator_api):
    job_id = jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01"}]).job_ids[0]
    response = operator_api.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = operator_api.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["status"] == "cancelled"


def test_cancel_a_running_job_asks_its_worker(operator_api):
    job_id = jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01"}]).job_ids[0]
    Job.objects.filter(id=job_id).update(status="running")
    body = operator_api.post(f"/jobs/{job_id}/cancel").json()
    assert body == {"job_id": job_id, "status": "running", "cancel_requested": True}


def test_status_reports_health_counts_and_the_machine(operator_api):
    jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01"}])
    body = operator_api.get("/status").json()
    assert body["health"] == "ok" and body["jobs"]["pending"] == 1
    assert {"version", "uptime_seconds", "active_jobs", "workers", "system", "export_roots"} <= set(body)
    assert {"load_average", "memory_total_bytes", "memory_available_bytes"} <= set(body["system"])


def test_vcenter_password_is_encrypted_and_never_served(operator_api, admin_client):
    vcenter = VCenter(name="vc1", url="https://vc1.example/sdk", username="admin@vsphere.local")
    vcenter.password = "Sup3r-S3cret"
    vcenter.save()
    raw = VCenter.objects.values_list("password_encrypted", flat=True).get()
    assert "Sup3r-S3cret" not in raw and VCenter.objects.get().password == "Sup3r-S3cret"
    job_id = jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01", "vcenter": "vc1"}]).job_ids[0]
    assert "Sup3r" not in json.dumps(operator_api.get(f"/jobs/{job_id}").json())
    for page in ("/admin/exports/vcenter/", f"/admin/exports/vcenter/{vcenter.pk}/change/"):
        response = admin_client.get(page)
        assert response.status_code == 200 and b"vc1" in response.content
        assert b"Sup3r" not in response.content


def test_openapi_schema_is_valid_without_warnings(db):
    done = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_swagger_ui_is_served_offline(admin_client):
    page = admin_client.get("/api/docs/")
    assert page.status_code == 200 and b"swagger-ui" in page.content
    assert b"cdn.jsdelivr" not in page.content


def test_admin_lists_jobs_with_logs_and_cancels(admin_client):
    job_id = jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01"}]).job_ids[0]
    listing = admin_client.get("/admin/exports/job/", {"status__exact": "pending", "q": "web01"})
    assert listing.status_code == 200 and job_id.encode() in listing.content
    detail = admin_client.get(f"/admin/exports/job/{job_id}/change/")
    assert b"submitted (api)" in detail.content
    admin_client.post("/admin/exports/job/", {"action": "cancel_jobs", "_selected_action": [job_id]})
    assert Job.objects.get(id=job_id).status == "cancelled"


def test_admin_vcenter_form_encrypts_the_password(admin_client):
    admin_client.post(
        "/admin/exports/vcenter/add/",
        {"name": "vc2", "url": "vc2.example", "username": "u", "password": "Pl41n-Pass", "ca_bundle": ""},
    )
    vcenter = VCenter.objects.get(name="vc2")
    assert vcenter.password == "Pl41n-Pass" and "Pl41n" not in vcenter.password_encrypted


def test_fast_job_representation_matches_drfs_own_rendering(db):
    from django.utils import timezone
    from rest_framework import serializers as drf

    from exports.api.serializers import JobSerializer

    vcenter = VCenter.objects.create(name="vc9", url="vc9", username="u")
    job_id = jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01", "vcenter": "vc9", "compress": True}]).job_ids[
        0
    ]
    Job.objects.filter(id=job_id).update(
        status="failed", percent=12.5, phase="downloading", eta_seconds=3.0, error="x", result={"a": 1},
        started_at=timezone.now(), finished_at=timezone.now(), heartbeat_at=timezone.now(),
    )  # fmt: skip
    job = Job.objects.select_related("vcenter").get(id=job_id)
    serializer = JobSerializer()
    assert serializer.to_representation(job) == dict(drf.ModelSerializer.to_representation(serializer, job))
    assert vcenter.name == serializer.to_representation(job)["vcenter"]
