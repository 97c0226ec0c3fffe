"""A job or schedule run given no output path: its default lies inside an export root, whoever
submits it (API, CLI, dashboard, schedule), or the request is refused at submit with the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboard import converter
from dashboard.forms import ConverterForm
from exports import jobs
from exports.models import Job
from exports.output_roots import resolve_output_path
from exports.pipeline.names import file_stem
from schedules import run_retention
from schedules.models import Schedule
from tests.conftest import fire_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir_outside_roots(tmp_path, settings) -> Path:
    """HYPERSDK_EXPORT_ROOTS set to one existing root; HYPERSDK_DATA_DIR elsewhere."""
    missing, root = tmp_path / "not-created", tmp_path / "exports"
    root.mkdir()
    settings.HYPERSDK_EXPORT_ROOTS = [str(missing), str(root)]
    settings.DATA_DIR = tmp_path / "data"
    return root


def inside(path: str, root: Path) -> bool:
    return Path(path).parent == root and resolve_output_path(path) == Path(path)


def test_api_default_lies_in_an_existing_export_root_when_the_data_dir_is_outside(
    operator_api, data_dir_outside_roots
):
    body = operator_api.post("/jobs/submit", {"vm_path": "/dc/vm/prod/db01"}, format="json").json()
    job = Job.objects.get(id=body["job_ids"][0])
    assert job.output_path == str(data_dir_outside_roots / f"db01-{job.id}")
    assert inside(job.output_path, data_dir_outside_roots)  # what the worker checks again


def test_default_stays_under_the_data_dir_when_that_is_inside_a_root(operator_api, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.HYPERSDK_EXPORT_ROOTS = [str(tmp_path / "other"), str(tmp_path / "data" / "exports")]
    body = operator_api.post("/jobs/submit", {"vm_path": "/dc/vm/prod/db01"}, format="json").json()
    job = Job.objects.get(id=body["job_ids"][0])
    assert job.output_path == str(tmp_path / "data" / "exports" / f"db01-{job.id}")


def test_without_a_usable_root_a_submit_without_output_is_refused_with_the_reason(
    operator_api, settings, tmp_path
):
    settings.DATA_DIR = tmp_path / "data"
    settings.HYPERSDK_EXPORT_ROOTS = []
    response = operator_api.post("/jobs/submit", {"vm_path": "/dc/vm/prod/db01"}, format="json")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["errors"] == {
        "output_path": ["no output_path given and no default: HYPERSDK_EXPORT_ROOTS holds no usable root"]
    }
    assert not Job.objects.exists()


def test_cli_daemon_submit_without_output_gets_the_same_default(data_dir_outside_roots):
    # hyperexport --use-daemon on the daemon's machine submits through the same service.
    result = jobs.submit_jobs([{"vm_path": "/dc/vm/prod/web01"}], origin=Job.Origin.CLI)
    job = Job.objects.get(id=result.job_ids[0])
    assert inside(job.output_path, data_dir_outside_roots)


def test_dashboard_converter_without_output_dir_gets_the_same_default(data_dir_outside_roots):
    form = ConverterForm(
        data={"vm_path": "/dc/vm/prod/web01", "target_format": "qcow2", "conversion_timeout": 120}
    )
    assert form.is_valid(), form.errors
    job = Job.objects.get(id=converter.submit(form))
    assert inside(job.output_path, data_dir_outside_roots)


def test_schedule_run_without_output_goes_under_the_default_root(data_dir_outside_roots):
    schedule = Schedule.objects.create(
        name="nightly", cron="0 2 * * *", timezone="UTC", job_template={"vm_path": "/dc/vm/prod/web01"}
    )
    run = fire_at(schedule.id, datetime(2026, 6, 1, 2, 0, tzinfo=UTC))
    assert run.job.output_path == str(data_dir_outside_roots / f"nightly-{schedule.id}-20260601-020000")
    assert inside(run.job.output_path, data_dir_outside_roots)


def test_schedule_without_output_is_refused_when_no_default_exists(operator_api, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.HYPERSDK_EXPORT_ROOTS = []
    response = operator_api.post(
        "/schedules", {"name": "nightly", "cron": "0 2 * * *", "vm_path": "/dc/vm/prod/web01"}, format="json"
    )
    assert response.status_code == 400
    assert "no output_path given and no default" in str(response.json())
    assert not Schedule.objects.exists()


def test_an_80_character_vm_name_in_4_byte_script_gets_a_default_that_fits_a_file_name(
    operator_api, data_dir_outside_roots
):
    name = "𠮷𩸽𠀋" * 26 + "𠮷."  # 80 characters, 318 bytes: vSphere allows it
    response = operator_api.post("/jobs/submit", {"vm_path": f"/dc/vm/prod/{name}"}, format="json")
    assert response.status_code == 202, response.json()
    job = Job.objects.get(id=response.json()["job_ids"][0])
    directory = Path(job.output_path)
    assert directory.parent == data_dir_outside_roots and directory.name.endswith(f"-{job.id}")
    assert directory.name.removesuffix(f"-{job.id}") == file_stem(name)
    assert len(directory.name.encode()) <= 255


def test_a_long_schedule_name_gets_run_directories_that_fit_and_retention_still_finds_them(
    data_dir_outside_roots,
):
    name = "夜間バックアップ" * 16  # 128 characters, 384 bytes
    schedule = Schedule.objects.create(
        name=name,
        cron="0 2 * * *",
        timezone="UTC",
        overlap="allow",
        retention=1,
        job_template={"vm_path": "/dc/vm/prod/web01"},
    )
    outputs = []
    for day in (1, 2):
        run = fire_at(schedule.id, datetime(2026, 6, day, 2, 0, tzinfo=UTC))
        Job.objects.filter(id=run.job_id).update(status="completed")
        Path(run.job.output_path).mkdir()
        outputs.append(Path(run.job.output_path))
    assert all(len(p.name.encode()) <= 255 and schedule.id in p.name for p in outputs)
    run_retention.apply_retention(schedule)
    assert [p.is_dir() for p in outputs] == [False, True]
