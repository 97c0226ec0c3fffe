"""The Manifest Converter's own controls: the overwrite choice, the hyper2kvm hint as the path
is typed, auto-detection beside the daemon's Python, and errors worded for the dashboard."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from exports import converters
from exports.models import Job
from exports.pipeline.errors import CompletedExportHere, PowerOffNotAsked
from tests.test_dashboard_views import HTMX, converter_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(operator, client):
    client.force_login(operator)
    return operator


@pytest.fixture
def nowhere(monkeypatch, settings):
    """No hyper2kvm on PATH, none beside the daemon's Python, none configured."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(converters, "environment_bin", lambda: "/nonexistent")
    settings.HYPERSDK_HYPER2KVM_PATHS = []


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def hint(client, typed: str) -> str:
    response = client.get("/ui/converter/hyper2kvm/", {"hyper2kvm_path": typed}, **HTMX)
    assert response.status_code == 200
    return response.content.decode()


# ---- overwrite -----------------------------------------------------------------------------------


def test_the_converter_offers_overwrite_and_the_job_asks_for_it(client, operator, export_root):
    page = client.get("/ui/converter/").content.decode()
    assert 'name="overwrite"' in page and ">Overwrite</label>" in page
    client.post("/ui/converter/", converter_form(output_dir=str(export_root / "web01"), overwrite="on"))
    assert Job.objects.get().options["overwrite"] is True


def test_without_the_overwrite_tick_the_job_does_not_overwrite(client, operator, export_root):
    client.post("/ui/converter/", converter_form(output_dir=str(export_root / "web01")))
    assert Job.objects.get().options["overwrite"] is False


@pytest.mark.parametrize(
    "surface, remedy",
    [
        ("cli", "pass -overwrite to replace it"),
        ("api", 'set "overwrite": true to replace it'),
        ("schedule", 'set "overwrite": true to replace it'),
        ("dashboard", 'tick "Overwrite" to replace it'),
    ],
)
def test_a_completed_export_in_the_way_is_worded_for_the_surface_the_job_came_from(surface, remedy):
    error = CompletedExportHere(Path("/exports/web01"), "web01.ovf")
    assert (
        error.worded_for(surface) == f"/exports/web01 already holds a completed export (web01.ovf): {remedy}"
    )
    assert str(error) == error.worded_for("cli")  # what a direct hyperexport prints


def test_the_dashboard_is_told_of_its_power_off_box():
    error = PowerOffNotAsked("/dc/vm/prod/web01")
    assert error.worded_for("dashboard") == (
        'VM /dc/vm/prod/web01 is powered on: shut it down first, or tick "Power off" to stop it'
    )
    assert str(error).endswith(", or pass -power-off to stop it")
    assert error.worded_for("api").endswith(', or set "power_off": true to stop it')


# ---- the hyper2kvm hint --------------------------------------------------------------------------


def test_auto_detect_finds_the_hyper2kvm_installed_beside_the_daemon_s_python(client, operator, monkeypatch):
    # `make run` starts .venv/bin/python without .venv/bin on PATH; pip put hyper2kvm there.
    beside = Path(sys.executable).parent / "hyper2kvm"
    if not beside.exists():
        pytest.fail(f"{beside} is missing: `make venv` installs hyper2kvm", pytrace=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert converters.detected_converter() == str(beside)
    assert converters.worker_converter("", convert=True) == str(beside)
    assert f"Detected on this server: <code>{beside}</code>" in client.get("/ui/converter/").content.decode()


def test_the_hint_says_what_a_typed_path_would_do(client, operator, nowhere, settings, tmp_path):
    configured = executable(tmp_path / "opt" / "hyper2kvm")
    settings.HYPERSDK_HYPER2KVM_PATHS = [str(configured)]
    assert f"A job will run <code>{configured}</code>." in hint(client, str(configured))
    refused = hint(client, "/usr/bin/env")
    assert "<code>/usr/bin/env</code> will be refused: not a configured converter" in refused
    assert 'class="hint error"' in refused
    assert "Neither hyper2kvm nor qemu-img was found on this server." in hint(client, "")


def test_a_configured_converter_that_is_not_there_is_said_to_be_missing(client, operator, nowhere, settings):
    settings.HYPERSDK_HYPER2KVM_PATHS = ["/opt/gone/hyper2kvm"]
    assert "/opt/gone/hyper2kvm is not an executable file on this server" in hint(
        client, "/opt/gone/hyper2kvm"
    )


def test_a_hostile_path_gets_a_hint_or_a_400_not_a_500(client, operator, nowhere):
    assert "will be refused: not a path" in hint(client, "x" * 5000)
    assert "<code>/opt/\ufffd/h</code> will be refused: not a path" in hint(client, "/opt/\x00/h")


def test_the_hint_asks_again_as_the_path_is_typed(client, operator):
    page = client.get("/ui/converter/").content.decode()
    hint_element = page.split('id="converter-help"', 1)[1].split(">", 1)[0]
    assert 'hx-get="/ui/converter/hyper2kvm/"' in hint_element
    assert "from:#id_hyper2kvm_path" in hint_element and 'hx-include="#id_hyper2kvm_path"' in hint_element


def test_after_a_refused_submit_the_hint_speaks_of_the_path_entered(client, operator, nowhere):
    response = client.post("/ui/converter/", converter_form(hyper2kvm_path="/usr/bin/env"), **HTMX)
    assert response.status_code == 422
    assert "<code>/usr/bin/env</code> will be refused" in response.content.decode()


def test_a_viewer_may_ask_for_the_hint_and_a_stranger_may_not(client, viewer):
    assert client.get("/ui/converter/hyper2kvm/").status_code == 302
    client.force_login(viewer)
    assert client.get("/ui/converter/hyper2kvm/").status_code == 200
