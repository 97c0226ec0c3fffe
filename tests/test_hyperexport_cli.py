"""`hyperexport` as an operator types it: the console script, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hypersdk.lib.units import human_size
from tests.conftest import APP01, govc_environment

pytestmark = pytest.mark.vsphere

HYPEREXPORT = str(Path(sys.executable).parent / "hyperexport")


def hyperexport(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GOVC_")} | env
    return subprocess.run(
        [HYPEREXPORT, *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def error_line(done: subprocess.CompletedProcess) -> str:
    """The last stderr line: progress lines come before it, the one-line error last."""
    return done.stderr.strip().splitlines()[-1]


def test_guide_example_3_runs_as_written(govc_env, app01_seeds, tmp_path):
    out = tmp_path / "exports" / "app01"
    done = hyperexport(
        "-vm", APP01, "-output", str(out), "-format", "ova", "-manifest",
        "-manifest-target", "qcow2", "-convert", "-verify",
        env=govc_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"success: app01 exported to {out} (")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["conversion"] == {"target_format": "qcow2", "verify_checksums": True}
    report = json.loads((out / "conversion-report.json").read_text())
    assert report["converter"] == "hyper2kvm"  # found on PATH
    assert sorted(Path(o["output"]).name for o in report["outputs"]) == [
        "app01-disk1.qcow2",
        "app01-disk2.qcow2",
    ]
    assert "identical to app01-disk1.vmdk" in done.stdout
    assert (out / "app01.ova").exists()


def test_double_dash_spellings_work_too(govc_env, app01_seeds, tmp_path):
    done = hyperexport(
        "--vm", APP01, "--output", str(tmp_path / "o"), "--format", "ovf", "--quiet", env=govc_env
    )
    assert done.returncode == 0, done.stderr


def test_quiet_prints_only_the_success_line(govc_env, app01_seeds, tmp_path):
    done = hyperexport("-vm", APP01, "-output", str(tmp_path / "o"), "-quiet", env=govc_env)
    assert done.returncode == 0
    assert done.stderr == ""
    size = human_size(sum(seed.stat().st_size for seed in app01_seeds))
    assert done.stdout == f"success: app01 exported to {tmp_path / 'o'} ({size})\n"


def test_default_output_is_export_dash_vm_name(govc_env, app01_seeds, tmp_path):
    done = hyperexport("-vm", APP01, "-quiet", env=govc_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "export-app01" / "app01.ovf").exists()


def test_wrong_password_names_the_user_never_the_password(govc_env, app01_seeds, tmp_path):
    env = govc_env | {"GOVC_PASSWORD": "Wr0ng-S3cret"}
    done = hyperexport("-vm", APP01, "-output", str(tmp_path / "o"), env=env)
    assert done.returncode == 1
    host = env["GOVC_URL"].split("//")[1].split(":")[0]
    assert error_line(done) == f"error: authentication failed for administrator@vsphere.local@{host}"
    assert "Wr0ng-S3cret" not in done.stdout + done.stderr
    assert not (tmp_path / "o").exists()


def test_password_in_govc_url_is_never_printed(govc_env, app01_seeds, tmp_path):
    url = govc_env["GOVC_URL"].replace("https://", "https://administrator%40vsphere.local:N0pe-S3cret@")
    env = {k: v for k, v in govc_env.items() if k not in ("GOVC_USERNAME", "GOVC_PASSWORD")} | {
        "GOVC_URL": url
    }
    done = hyperexport("-vm", APP01, "-output", str(tmp_path / "o"), env=env)
    assert done.returncode == 1
    assert "N0pe-S3cret" not in done.stdout + done.stderr
    assert "authentication failed" in done.stderr


def test_unknown_vm_is_one_clear_line(govc_env, tmp_path):
    done = hyperexport("-vm", "/dc/vm/prod/nope", "-output", str(tmp_path / "o"), env=govc_env)
    assert done.returncode == 1
    assert error_line(done) == (
        "error: VM not found: /dc/vm/prod/nope (give the inventory path, e.g. /dc/vm/folder/name)"
    )


def test_unreachable_host(govc_env, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once we leave: nothing listens there
    env = govc_env | {"GOVC_URL": f"https://127.0.0.1:{port}/sdk"}
    done = hyperexport("-vm", APP01, "-output", str(tmp_path / "o"), env=env)
    assert done.returncode == 1
    assert error_line(done).startswith(f"error: cannot reach vCenter 127.0.0.1:{port}")


def test_untrusted_certificate_says_how_to_trust_it(govc_env, tmp_path):
    env = {k: v for k, v in govc_env.items() if k != "GOVC_TLS_CA_CERTS"}
    done = hyperexport("-vm", APP01, "-dry-run", env=env)
    assert done.returncode == 1
    assert "TLS verification of 127.0.0.1" in done.stderr
    assert "GOVC_TLS_CA_CERTS=<ca.pem>" in done.stderr and "GOVC_INSECURE=1" in done.stderr


def test_insecure_skips_verification_when_asked(govc_env, app01_seeds, tmp_path):
    env = {k: v for k, v in govc_env.items() if k != "GOVC_TLS_CA_CERTS"} | {"GOVC_INSECURE": "1"}
    done = hyperexport("-vm", APP01, "-output", str(tmp_path / "o"), "-quiet", env=env)
    assert done.returncode == 0, done.stderr


def test_powered_on_vm_is_refused_unless_power_off_is_given(vsphere, govc_env, tmp_path):
    vm = "/dc/vm/prod/web02"
    vsphere.power_on(vm)
    try:
        refused = hyperexport("-vm", vm, "-output", str(tmp_path / "o"), env=govc_env)
        assert refused.returncode == 1
        assert error_line(refused) == (
            f"error: VM {vm} is powered on: shut it down first, or pass -power-off to stop it"
        )
        assert not (tmp_path / "o").exists()
        stopped = hyperexport("-vm", vm, "-output", str(tmp_path / "o"), "-power-off", env=govc_env)
        assert stopped.returncode == 0, stopped.stderr
        assert vsphere.find_vm(vm).runtime.powerState == "poweredOff"
    finally:
        vsphere.power_off(vm)


def test_completed_export_is_kept_unless_overwrite(govc_env, app01_seeds, tmp_path):
    out = str(tmp_path / "o")
    assert hyperexport("-vm", APP01, "-output", out, "-quiet", env=govc_env).returncode == 0
    again = hyperexport("-vm", APP01, "-output", out, env=govc_env)
    assert again.returncode == 1
    assert (
        error_line(again)
        == f"error: {out} already holds a completed export (app01.ovf): pass -overwrite to replace it"
    )
    assert hyperexport("-vm", APP01, "-output", out, "-overwrite", "-quiet", env=govc_env).returncode == 0


def test_output_that_cannot_be_created(govc_env, app01_seeds, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = hyperexport("-vm", APP01, "-output", str(blocker / "o"), env=govc_env)
    assert done.returncode == 1
    # The preflight says it before anything starts, as the export itself would have.
    assert error_line(done).startswith(f"error: output directory {blocker / 'o'} cannot be made")
    assert "is a file" in error_line(done)


def test_dry_run_touches_nothing(govc_env, app01_seeds, tmp_path):
    done = hyperexport("-vm", APP01, "-output", str(tmp_path / "o"), "-dry-run", env=govc_env)
    assert done.returncode == 0, done.stderr
    assert "would be exported" in done.stdout
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-format", "zip"], "invalid choice: 'zip'"),
        (["-manifest-target", "vhd"], "invalid choice: 'vhd'"),
        ([], "the following arguments are required: -vm"),
        (
            ["-conversion-timeout", "soon"],
            "argument -conversion-timeout/--conversion-timeout: invalid duration 'soon'",
        ),
    ],
)
def test_usage_errors_exit_2(args, message, govc_env):
    vm = [] if not args else ["-vm", APP01]
    done = hyperexport(*vm, *args, env=govc_env)
    assert done.returncode == 2
    assert message in done.stderr


def test_missing_converter_binary_is_reported_before_exporting(govc_env, tmp_path):
    done = hyperexport(
        "-vm", APP01, "-output", str(tmp_path / "o"), "-convert", "-hyper2kvm-path", "/nonexistent/hyper2kvm",
        env=govc_env,
    )  # fmt: skip
    assert done.returncode == 1
    assert error_line(done) == "error: hyper2kvm not found or not executable: /nonexistent/hyper2kvm"
    assert not (tmp_path / "o").exists()


def _wait_for_bytes(stream, needle: bytes) -> bytes:
    seen = b""
    while needle not in seen:
        try:
            chunk = os.read(stream, 4096)
        except OSError:  # EIO: a pty whose other end has closed
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_sigint_cancels_aborts_the_lease_and_removes_partials(slow_vsphere, tmp_path):
    sim, image = slow_vsphere
    out = tmp_path / "o"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVC_")} | govc_environment(sim)
    process = subprocess.Popen(
        [HYPEREXPORT, "-vm", "/dc/vm/prod/db01", "-output", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for_bytes(process.stderr.fileno(), b"downloading")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert stderr.decode().strip().splitlines()[-1] == "error: export cancelled"
    assert not out.exists()
    report = sim.leases()[-1]
    assert report["aborted"] and report["bytes_served"] < image.stat().st_size


def test_a_terminal_gets_a_live_bar_with_bytes_rate_and_eta(slow_vsphere, tmp_path):
    sim, _ = slow_vsphere
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVC_")} | govc_environment(sim)
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [HYPEREXPORT, "-vm", "/dc/vm/prod/db01", "-output", str(tmp_path / "o")],
        env=env | {"COLUMNS": "160"},
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    screen = _wait_for_bytes(primary, b"ETA ")
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    os.close(primary)
    text = screen.decode(errors="replace")
    assert "downloading db01-disk1.vmdk" in text
    assert re.search(r"\d+\.\d MiB/24\.\d MiB", text)  # the phase's bytes done / total, IEC as everywhere
    assert re.search(r"\d+\.\d MiB/s", text)  # rate
    assert re.search(r"ETA \d", text)  # the run's ETA
