"""Export options are declared once (exports/pipeline/options.py) and every surface is built from
the declarations; ``compression_level`` was added that way, as one entry plus the code using it."""

from __future__ import annotations

import argparse
import json
import tarfile

import pytest
from rest_framework.test import APIClient

from api_tokens.service import issue_token
from cli.flags import add_job_flags, engine_options_from_flags
from cli.hyperexport_daemon import job_spec
from cli.management.commands import hyperexport
from dashboard.forms import ConverterForm
from exports import job_runner, jobs
from exports.job_spec import JobSpecSerializer
from exports.models import Job
from exports.pipeline.connect import VCenterTarget
from exports.pipeline.formats import OVA_GZIP_LEVEL, TARGET_FORMATS, TARGETS
from exports.pipeline.manifest import SCHEMA_PATH
from exports.pipeline.options import OPTIONS, ExportOptions, InvalidOptions
from exports.pipeline.ova import gzip_disks
from exports.pipeline.run import export_vm
from hypersdk.lib.permissions import grant_role
from schedules.spec import ScheduleSpecSerializer
from tests.conftest import APP01, govc_environment

VM = ["-vm", "/dc/vm/prod/web01"]


def parse(args: list[str]) -> dict:
    cmd = hyperexport.Command()
    cmd._called_from_command_line = True  # argparse's own exit 2, as from a shell
    return vars(cmd.create_parser("hyperexport", "hyperexport").parse_args(args))


@pytest.fixture
def operator_api(db, django_user_model) -> APIClient:
    user = django_user_model.objects.create_user("operator", password="operator-pass")
    grant_role(user, "operator")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return api


# ---- every surface shows every declared option ------------------------------------------------


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.name)
def test_each_option_is_a_job_spec_field_a_schedule_field_and_a_flag_of_both_clis(option, db):
    assert option.name in JobSpecSerializer().fields
    assert option.name in ScheduleSpecSerializer().fields
    hyperexport_flags = {
        flag
        for action in hyperexport.Command().create_parser("x", "y")._actions
        for flag in action.option_strings
    }
    daemon_parser = argparse.ArgumentParser()
    add_job_flags(daemon_parser)
    daemon_flags = {flag for action in daemon_parser._actions for flag in action.option_strings}
    flags = {f"-{option.flag_name}", f"--{option.flag_name}"}
    assert flags <= hyperexport_flags
    # hyperctl's schedule flags: what a schedule may carry (Option.schedulable), nothing else.
    assert (flags <= daemon_flags) is option.schedulable
    assert option.schedulable or not flags & daemon_flags
    if option.form is not None:
        assert option.form.name in ConverterForm.base_fields


def test_the_dashboard_radio_buttons_are_the_target_formats_with_their_labels():
    choices = ConverterForm.base_fields["target_format"].choices
    assert choices == [(target.name, target.label) for target in TARGETS]
    assert JobSpecSerializer().fields["manifest_target"].choices.keys() == set(TARGET_FORMATS)


def test_the_artifact_manifest_schema_accepts_exactly_the_target_formats():
    # The schema is the manifest's published contract (hyper2kvm reads it): edited by hand, checked here.
    schema = json.loads(SCHEMA_PATH.read_text())["properties"]
    assert schema["output"]["properties"]["format"]["enum"] == list(TARGET_FORMATS)
    assert schema["conversion"]["properties"]["target_format"]["enum"] == list(TARGET_FORMATS)


def test_durations_are_seconds_inside_and_minutes_on_the_wire(db):
    spec = job_spec(parse([*VM, "--use-daemon", "-conversion-timeout", "90m"]), local=True)
    assert spec["conversion_timeout"] == 90
    assert engine_options_from_flags(parse([*VM, "-conversion-timeout", "90m"]))["conversion_timeout"] == 5400
    assert JobSpecSerializer().fields["conversion_timeout"].default == 120
    assert ExportOptions(vm_path="/dc/vm/a").conversion_timeout == 7200


# ---- the option added through the declaration: the OVA's gzip level ---------------------------


def test_compression_level_is_a_job_spec_field_stored_only_when_given(operator_api, export_root):
    asked = operator_api.post(
        "/jobs/submit",
        {"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "a"), "compress": True,
         "format": "ova", "compression_level": 9},
        format="json",
    )  # fmt: skip
    plain = operator_api.post(
        "/jobs/submit", {"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "b")}, format="json"
    )
    assert (asked.status_code, plain.status_code) == (202, 202)
    assert Job.objects.get(id=asked.json()["job_ids"][0]).options["compression_level"] == 9
    # A job that did not ask reads as jobs did before the option existed.
    assert "compression_level" not in Job.objects.get(id=plain.json()["job_ids"][0]).options


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "Ensure this value is greater than or equal to 1."),
        (10, "Ensure this value is less than or equal to 9."),
        ("fast", "A valid integer is required."),
    ],
)
def test_a_bad_compression_level_is_a_400_with_its_field_error(operator_api, value, message):
    response = operator_api.post(
        "/jobs/submit", {"vm_path": "/dc/vm/a", "compression_level": value}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["compression_level"] == [message]
    assert Job.objects.count() == 0


def test_the_worker_runs_the_jobs_compression_level_and_the_default_without_one(db, export_root):
    ids = jobs.submit_jobs(
        [
            {"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "a"), "compression_level": 6},
            {"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "b")},
        ]
    ).job_ids
    levels = [job_runner.export_options(Job.objects.get(id=job_id)).compression_level for job_id in ids]
    assert levels == [6, OVA_GZIP_LEVEL]


def test_compression_level_flag_reaches_a_direct_export_and_a_daemon_job(db):
    direct = ExportOptions(
        vm_path="/dc/vm/a", **engine_options_from_flags(parse([*VM, "-compression-level", "9"]))
    )
    assert direct.validate().compression_level == 9
    assert ExportOptions(vm_path="/dc/vm/a", **engine_options_from_flags(parse(VM))).compression_level == 1
    assert (
        job_spec(parse([*VM, "--use-daemon", "--compression-level", "7"]), local=True)["compression_level"]
        == 7
    )
    assert "compression_level" not in job_spec(parse([*VM, "--use-daemon"]), local=True)


@pytest.mark.parametrize("value", ["0", "10", "\u0663", "fast"])
def test_a_bad_compression_level_flag_is_a_one_line_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exited:
        parse([*VM, "-compression-level", value])
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(
        f"error: argument -compression-level/--compression-level: invalid compression level {value!r}: a whole number from 1 to 9"
    )


def test_a_direct_export_refuses_a_compression_level_out_of_bounds():
    with pytest.raises(InvalidOptions, match="^-compression-level must be from 1 to 9$"):
        ExportOptions(vm_path="/dc/vm/a", compression_level=10).validate()


def test_the_level_is_the_gzip_level_of_the_disks_in_the_ova(exported_disks, tmp_path):
    # The gzip header's XFL byte says which: 4 for the fastest (level 1), 2 for the smallest (9).
    fast, small = tmp_path / "fast", tmp_path / "small"
    fast.mkdir(), small.mkdir()
    default = gzip_disks(exported_disks, fast)
    smallest = gzip_disks(exported_disks, small, level=9)
    assert [disk.path.read_bytes()[8] for disk in default] == [4, 4]
    assert [disk.path.read_bytes()[8] for disk in smallest] == [2, 2]


@pytest.mark.vsphere
def test_a_direct_export_gzips_the_ova_disks_at_the_level_asked(vsphere, app01_seeds, tmp_path):
    options = ExportOptions(
        vm_path=APP01, output_dir=tmp_path / "out", format="ova", compress=True, compression_level=9
    )
    result = export_vm(options, VCenterTarget.from_env(govc_environment(vsphere)))
    with tarfile.open(result.package) as ova:
        disks = [member for member in ova.getmembers() if member.name.endswith(".vmdk")]
        headers = [ova.extractfile(member).read(10) for member in disks]  # type: ignore[union-attr]
    assert len(headers) == 2 and all(header[:2] == b"\x1f\x8b" and header[8] == 2 for header in headers)


def test_the_converter_page_shows_every_option_the_form_declares(operator_browser):
    # The page lays its fields out by hand: an option given a form field but no template line
    # would vanish from the dashboard while every other surface had it.
    page = operator_browser.get("/ui/converter/").content.decode()
    missing = [
        option.form.name
        for option in OPTIONS
        if option.form is not None and f'name="{option.form.name}"' not in page
    ]
    assert missing == []
