"""Export options and vCenter targets: usage errors are caught before anything is touched."""

import pytest

from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import VCenterConnectionError
from exports.pipeline.names import file_stem
from exports.pipeline.options import ExportOptions, InvalidOptions, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("120", 7200), ("90m", 5400), ("2h", 7200), ("1h30m", 5400), ("45s", 45)],
)
def test_durations_accept_minutes_and_go_style_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "abc", "5d", "-3", "\u0663", "\u0663m", "1h\u0663m", "9" * 5000])
def test_bad_durations_are_usage_errors(text):
    with pytest.raises(InvalidOptions):
        parse_duration(text)


def test_unknown_format_and_target_are_refused():
    with pytest.raises(InvalidOptions, match="unknown format 'zip'"):
        ExportOptions(vm_path="/dc/vm/a", format="zip").validate()
    with pytest.raises(InvalidOptions, match="unknown manifest target 'vhd'"):
        ExportOptions(vm_path="/dc/vm/a", manifest_target="vhd").validate()


def test_default_output_is_export_dash_vm_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ExportOptions(vm_path="/dc/vm/prod/app01").output == tmp_path / "export-app01"


def test_default_output_of_an_80_character_4_byte_name_fits_a_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = "𠮷𩸽𠀋" * 26 + "𠮷."  # 80 characters, 318 bytes
    output = ExportOptions(vm_path=f"/dc/vm/prod/{name}").output
    assert output.parent == tmp_path and output.name.removeprefix("export-") == file_stem(name)
    assert len(output.name.encode()) <= 255


def test_conversion_and_verification_imply_the_manifest():
    assert ExportOptions(vm_path="/dc/vm/a", convert=True).writes_manifest
    assert ExportOptions(vm_path="/dc/vm/a", verify=True).writes_manifest
    assert not ExportOptions(vm_path="/dc/vm/a").writes_manifest


def test_govc_url_with_credentials_is_parsed_and_password_hidden():
    target = VCenterTarget.from_env(
        {"GOVC_URL": "https://admin%40vsphere.local:s3cr%21t@vc.example:8443/sdk"}
    )
    assert (target.host, target.port, target.username, target.password) == (
        "vc.example",
        8443,
        "admin@vsphere.local",
        "s3cr!t",
    )
    assert "s3cr" not in repr(target)
    assert target.display == "admin@vsphere.local@vc.example"


def test_govc_variables_override_the_url_and_explicit_arguments_override_both():
    env = {
        "GOVC_URL": "vc.example",
        "GOVC_USERNAME": "u1",
        "GOVC_PASSWORD": "p1",
        "GOVC_INSECURE": "1",
        "GOVC_TLS_CA_CERTS": "/ca.pem",
    }
    target = VCenterTarget.from_env(env, username="u2")
    assert (target.host, target.port, target.username, target.password) == ("vc.example", 443, "u2", "p1")
    assert target.insecure and target.ca_file == "/ca.pem"


def test_missing_vcenter_is_a_clear_error():
    with pytest.raises(VCenterConnectionError, match="set GOVC_URL"):
        VCenterTarget.from_env({})
