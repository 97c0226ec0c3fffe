"""Only converters the administrator configured (or the daemon finds on its PATH) ever run."""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from exports import converters, jobs
from exports.models import Job
from hypersdk.lib.permissions import grant_role
from schedules.models import Schedule

pytestmark = pytest.mark.django_db


def planted(directory: Path) -> tuple[Path, Path]:
    """An executable named hyper2kvm that leaves a mark when run: what an attacker would plant."""
    directory.mkdir(parents=True, exist_ok=True)
    mark = directory / "ran"
    binary = directory / "hyper2kvm"
    binary.write_text(f"#!/bin/sh\ntouch {mark}\n")
    binary.chmod(0o755)
    return binary, mark


@pytest.fixture
def no_detected_hyper2kvm(monkeypatch, settings):
    """A daemon with no hyper2kvm on its PATH or in its environment and none configured,
    unless a test adds one."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(converters, "environment_bin", lambda: "/nonexistent")
    settings.HYPERSDK_HYPER2KVM_PATHS = []


def submit(operator_api: APIClient, **spec):
    return operator_api.post(
        "/jobs/submit", {"vm_path": "/dc/vm/prod/web01", "convert": True, **spec}, format="json"
    )


def test_a_planted_binary_named_hyper2kvm_is_a_400_listing_the_allowed_converters(
    operator_api, tmp_path, settings, no_detected_hyper2kvm
):
    binary, _ = planted(tmp_path / "x")
    settings.HYPERSDK_HYPER2KVM_PATHS = ["/opt/h2k/bin/hyper2kvm"]
    response = submit(operator_api, hyper2kvm_path=str(binary))
    assert response.status_code == 400
    assert response.json()["hyper2kvm_path"] == [
        "not a configured converter; leave it empty for auto-detection or use one of: /opt/h2k/bin/hyper2kvm"
    ]
    assert not Job.objects.exists()


def test_a_symlink_to_a_shell_named_hyper2kvm_is_refused(operator_api, tmp_path, no_detected_hyper2kvm):
    (tmp_path / "hyper2kvm").symlink_to("/bin/sh")
    response = submit(operator_api, hyper2kvm_path=str(tmp_path / "hyper2kvm"))
    assert response.status_code == 400
    assert "this server has none" in response.json()["hyper2kvm_path"][0]


def test_a_configured_converter_is_accepted(operator_api, settings, no_detected_hyper2kvm):
    settings.HYPERSDK_HYPER2KVM_PATHS = ["/opt/h2k/bin/hyper2kvm", "/usr/local/bin/hyper2kvm"]
    response = submit(operator_api, hyper2kvm_path="/usr/local/bin/hyper2kvm")
    assert response.status_code == 202, response.content
    assert Job.objects.get().options["hyper2kvm_path"] == "/usr/local/bin/hyper2kvm"


def test_the_auto_detected_converter_may_be_named_or_left_empty(
    operator_api, tmp_path, monkeypatch, settings
):
    binary, _ = planted(tmp_path / "bin")
    settings.HYPERSDK_HYPER2KVM_PATHS = []
    monkeypatch.setenv("PATH", str(binary.parent))  # the daemon's own PATH: the administrator's
    assert submit(operator_api, hyper2kvm_path=str(binary)).status_code == 202
    assert submit(operator_api).status_code == 202


def test_the_dashboard_converter_form_refuses_an_unconfigured_binary(
    client, django_user_model, tmp_path, no_detected_hyper2kvm
):
    user = django_user_model.objects.create_user("op", password="op-pass")
    grant_role(user, "operator")
    client.force_login(user)
    binary, _ = planted(tmp_path / "x")
    form = {
        "vm_path": "/dc/vm/prod/web01",
        "target_format": "qcow2",
        "auto_convert": "on",
        "hyper2kvm_path": str(binary),
        "conversion_timeout": "120",
    }
    response = client.post("/ui/converter/", form, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    error = response.content.decode().split('id="id_hyper2kvm_path-error">', 1)[1].split("</span>", 1)[0]
    assert "not a configured converter" in error
    assert not Job.objects.exists()


def test_the_dashboard_lists_the_configured_converters(
    client, django_user_model, settings, no_detected_hyper2kvm
):
    user = django_user_model.objects.create_user("op", password="op-pass")
    grant_role(user, "operator")
    client.force_login(user)
    settings.HYPERSDK_HYPER2KVM_PATHS = ["/opt/h2k/bin/hyper2kvm"]
    assert "<code>/opt/h2k/bin/hyper2kvm</code>" in client.get("/ui/converter/").content.decode()


def test_a_schedule_cannot_name_an_unconfigured_converter(
    operator_api, tmp_path, export_root, no_detected_hyper2kvm
):
    binary, _ = planted(tmp_path / "x")
    response = operator_api.post(
        "/schedules",
        {
            "name": "nightly",
            "cron": "0 2 * * *",
            "vm_path": "/dc/vm/prod/web01",
            "output_path": str(export_root / "nightly"),
            "convert": True,
            "hyper2kvm_path": str(binary),
        },
        format="json",
    )
    assert response.status_code == 400
    assert "not a configured converter" in response.json()["hyper2kvm_path"][0]
    assert not Schedule.objects.exists()


def test_an_imported_config_cannot_name_an_unconfigured_converter(
    tmp_path, export_root, no_detected_hyper2kvm
):
    binary, _ = planted(tmp_path / "x")
    config = tmp_path / "config.yaml"
    config.write_text(
        "schedules:\n"
        "  - name: nightly\n"
        "    cron: '0 2 * * *'\n"
        "    vm: /dc/vm/prod/web01\n"
        f"    output: {export_root / 'nightly'}\n"
        "    convert: true\n"
        f"    hyper2kvm_path: {binary}\n"
    )
    err = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("import_config", str(config), stdout=StringIO(), stderr=err)
    assert exited.value.code == 1
    assert "hyper2kvm_path: not a configured converter" in err.getvalue()
    assert not Schedule.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_worker_refuses_a_job_row_naming_an_unconfigured_converter(
    tmp_path, export_root, redis_url, no_detected_hyper2kvm
):
    from exports import job_runner

    binary, mark = planted(tmp_path / "x")
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "web01"), "convert": True}]
    ).job_ids[0]
    # A row written before the rule, or edited in the database afterwards.
    job = Job.objects.get(id=job_id)
    job.options = {**job.options, "hyper2kvm_path": str(binary)}
    job.save(update_fields=["options"])
    assert job_runner.run_job(job_id) == "failed"
    job.refresh_from_db()
    assert job.error.startswith("hyper2kvm_path refused: not a configured converter")
    assert not mark.exists()


def test_the_setting_takes_only_absolute_paths(monkeypatch):
    from hypersdk.lib.env import ConfigError, env_abs_paths

    monkeypatch.setenv("HYPERSDK_HYPER2KVM_PATHS", "/opt/h2k/bin/../bin/hyper2kvm, /usr/bin/hyper2kvm")
    assert env_abs_paths("HYPERSDK_HYPER2KVM_PATHS") == ["/opt/h2k/bin/hyper2kvm", "/usr/bin/hyper2kvm"]
    monkeypatch.setenv("HYPERSDK_HYPER2KVM_PATHS", "bin/hyper2kvm")
    with pytest.raises(
        ConfigError, match="^HYPERSDK_HYPER2KVM_PATHS must list absolute paths, got 'bin/hyper2kvm'$"
    ):
        env_abs_paths("HYPERSDK_HYPER2KVM_PATHS")


def unsafe_message(binary: Path, component: Path, reason: str, fix: str) -> str:
    return (
        f"converter {binary} is unsafe to run: {component} {reason}; run `{fix} {component}`, or "
        "install the converter where only root can write"
    )


def test_hypervisord_and_bootstrap_refuse_a_configured_converter_in_a_dir_others_can_write(
    tmp_path, settings, no_detected_hyper2kvm
):
    binary, mark = planted(tmp_path / "shared")
    binary.parent.chmod(0o777)  # anyone may replace the file the daemon would run as root
    settings.HYPERSDK_HYPER2KVM_PATHS = [str(binary)]
    settings.DATA_DIR = tmp_path / "var"
    expected = unsafe_message(
        binary, binary.parent, "is writable by group or others (mode 0777)", "chmod go-w"
    )
    for command in (["hypervisord", "--listen", "nowhere"], ["bootstrap_admin"]):
        with pytest.raises(CommandError) as refused:
            call_command(*command, stdout=StringIO(), stderr=StringIO())
        assert str(refused.value) == expected
    assert not Job.objects.exists() and not mark.exists()


def test_a_group_writable_converter_file_is_refused_at_submit(
    operator_api, tmp_path, settings, no_detected_hyper2kvm
):
    binary, _ = planted(tmp_path / "bin")
    binary.chmod(0o775)
    settings.HYPERSDK_HYPER2KVM_PATHS = [str(binary)]
    response = submit(operator_api, hyper2kvm_path=str(binary))
    assert response.status_code == 400
    assert response.json()["hyper2kvm_path"] == [
        unsafe_message(binary, binary, "is writable by group or others (mode 0775)", "chmod go-w")
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_converter_owned_by_another_user_is_refused(tmp_path):
    from exports.converters import ConverterUnsafe, refuse_unsafe

    binary, _ = planted(tmp_path / "theirs")
    os.chown(binary.parent, 65534, 65534)
    with pytest.raises(ConverterUnsafe) as refused:
        refuse_unsafe(str(binary))
    assert str(refused.value) == unsafe_message(binary, binary.parent, "is owned by nobody", "chown root")


def test_a_converter_below_a_sticky_dir_is_safe_but_a_missing_one_in_it_is_not(tmp_path):
    from exports.converters import ConverterUnsafe, refuse_unsafe

    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: only an entry's owner may rename or remove it
    binary, _ = planted(sticky / "h2k")
    refuse_unsafe(str(binary))
    with pytest.raises(ConverterUnsafe, match=f"{sticky} is writable by group or others"):
        refuse_unsafe(str(sticky / "not-yet" / "hyper2kvm"))  # anyone could create not-yet
    link = tmp_path / "link-to-open"
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    link.symlink_to(tmp_path / "open")
    with pytest.raises(ConverterUnsafe, match=f"{tmp_path / 'open'} is writable by group or others"):
        refuse_unsafe(str(link / "hyper2kvm"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["configured", "detected"])
def test_the_worker_refuses_a_converter_that_became_writable_by_others(
    tmp_path, export_root, redis_url, monkeypatch, settings, no_detected_hyper2kvm, how
):
    from exports import job_runner

    binary, mark = planted(tmp_path / "bin")
    spec = {"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "web01"), "convert": True}
    if how == "configured":
        settings.HYPERSDK_HYPER2KVM_PATHS = [str(binary)]
        spec["hyper2kvm_path"] = str(binary)
    else:
        monkeypatch.setenv("PATH", str(binary.parent))
    job_id = jobs.submit_jobs([spec]).job_ids[0]
    binary.parent.chmod(0o777)  # after submit: only the worker's own check can catch it
    assert job_runner.run_job(job_id) == "failed"
    job = Job.objects.get(id=job_id)
    assert job.error == "hyper2kvm_path refused: " + unsafe_message(
        binary, binary.parent, "is writable by group or others (mode 0777)", "chmod go-w"
    )
    assert not mark.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("edit", "error"),
    [
        ({"conversion_timeout": "abc"}, "conversion_timeout refused: A valid integer is required."),
        ({"parallel": 0}, "parallel refused: Ensure this value is greater than or equal to 1."),
        ({"format": "zip\nx"}, 'format refused: "zip x" is not a valid choice.'),
        (
            {"manifest_target": "exe", "verify": "maybe"},
            'manifest_target refused: "exe" is not a valid choice.; verify refused: Must be a valid boolean.',
        ),
        ({"shell": "sh"}, "shell refused: unknown field"),
    ],
)
def test_the_worker_fails_an_edited_job_row_with_the_apis_one_line_reason(
    export_root, redis_url, no_detected_hyper2kvm, edit, error
):
    """A row edited in the database is validated again as at submit, not crashed on."""
    from exports import job_runner

    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/web01", "output_path": str(export_root / "web01")}]
    ).job_ids[0]
    job = Job.objects.get(id=job_id)
    job.options = {**job.options, **edit}
    job.save(update_fields=["options"])
    assert job_runner.run_job(job_id) == "failed"
    job.refresh_from_db()
    assert job.error == error


def test_hypervisord_refuses_a_qemu_img_on_its_path_in_a_dir_others_can_write(
    tmp_path, monkeypatch, settings, no_detected_hyper2kvm
):
    shared = tmp_path / "shared"
    shared.mkdir()
    qemu_img = shared / "qemu-img"
    qemu_img.write_text("#!/bin/sh\n")
    qemu_img.chmod(0o755)
    shared.chmod(0o777)
    monkeypatch.setenv("PATH", str(shared))
    settings.DATA_DIR = tmp_path / "var"
    with pytest.raises(CommandError) as refused:
        call_command("hypervisord", "--listen", "nowhere", stdout=StringIO(), stderr=StringIO())
    assert str(refused.value) == unsafe_message(
        qemu_img, shared, "is writable by group or others (mode 0777)", "chmod go-w"
    )
