"""Preflight against the vSphere test server: each finding it can model, through
``hyperexport -preflight`` (direct), ``inventory.preflight.preflight_spec`` (what POST
/vms/preflight, the local CLI and the dashboard call) and a job's first phase.

The module has a simulator of its own, and no test in it ever takes an export lease: every
test ends by checking the server's lease list is still empty.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from exports import job_runner, jobs
from exports.models import Job, JobLog
from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import PreflightBlocked
from exports.pipeline.options import ExportOptions
from exports.pipeline.run import export_vm
from inventory.preflight import preflight_spec
from tests.cli_runner import run_in_process, run_process
from tests.conftest import bare_env, govc_environment, register_vcenter, start_simulator
from tests.vsphere_sim.harness import DiskSpec, make_stream_vmdk

pytestmark = pytest.mark.vsphere

FOLDER = "/dc/vm/preflight"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    server = start_simulator(tmp_path_factory.mktemp("preflight-sim"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_lease_is_ever_taken(sim):
    yield
    assert sim.leases() == [], "a preflight took an export lease"


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    return make_stream_vmdk(tmp_path_factory.mktemp("preflight-seed") / "disk.vmdk", 1)


@pytest.fixture
def make_vm(sim, image, request):
    """A new powered-off VM of one disk in /dc/vm/preflight, named after the test."""
    made = iter(range(100))

    def make(disks: list[DiskSpec] | None = None, **shape) -> str:
        name = f"{request.node.name[5:40]}-{next(made)}"
        return sim.create_vm(FOLDER, name, disks or [DiskSpec(image)], **shape)

    return make


def govc(sim) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GOVC_")} | govc_environment(sim)


def preflight_cli(sim, *args: str) -> subprocess.CompletedProcess:
    return run_in_process("hyperexport", "-preflight", *args, env=govc(sim))


def reconfigure(sim, vm_path: str, edit) -> None:
    """Change the VM's devices: ``edit(device)`` returns True for each device it changed."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    vm = sim.find_vm(vm_path)
    changes = [
        vim.vm.device.VirtualDeviceSpec(operation="edit", device=device)
        for device in vm.config.hardware.device
        if edit(device)
    ]
    assert changes, "nothing to change"
    WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)), si=sim._si())


def make_independent(device) -> bool:
    from pyVmomi import vim

    if isinstance(device, vim.vm.device.VirtualDisk):
        device.backing.diskMode = "independent_persistent"
        return True
    return False


def codes(report) -> list[tuple[str, str]]:
    return [(f.level, f.code) for f in report.findings]


@pytest.fixture
def spec_of(sim, export_root, db):
    vcenter = register_vcenter(sim, "preflight-sim")

    def spec(vm_path: str, **options) -> dict:
        return {
            "vm_path": vm_path,
            "vcenter": vcenter.name,
            "output_path": str(export_root / "out"),
            **options,
        }

    return spec


# ---- hyperexport -preflight (direct) -------------------------------------------------------------


def test_a_powered_on_vm_is_a_blocker_exit_1_and_nothing_is_written(sim, make_vm, tmp_path):
    vm = make_vm()
    sim.power_on(vm)
    out = tmp_path / "out"
    done = preflight_cli(sim, "-vm", vm, "-output", str(out))
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"blocker: VM {vm} is powered on (shut it down first, or pass -power-off to stop it)",
        f"preflight: {vm} cannot be exported (1 blocker)",
    ]
    assert not out.exists()


def test_with_power_off_the_preflight_says_so_and_leaves_the_vm_running(sim, make_vm, tmp_path):
    vm = make_vm()
    sim.power_on(vm)
    done = preflight_cli(sim, "-vm", vm, "-output", str(tmp_path / "out"), "-power-off")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(f"info: VM {vm} is powered on: the export stops it first")
    assert done.stdout.splitlines()[-1] == f"preflight: {vm} can be exported (no blockers, 1 note)"
    assert sim.find_vm(vm).runtime.powerState == "poweredOn"  # a preflight stops nothing
    assert not (tmp_path / "out").exists()


def test_the_console_script_preflights_without_any_daemon_settings(sim, make_vm, tmp_path):
    # Its own process, only GOVC_* set: the direct mode needs no database, Redis or Django settings.
    vm = make_vm(snapshots=1)
    env = bare_env(tmp_path) | govc_environment(sim)
    done = run_process("hyperexport", "-preflight", "-vm", vm, "-output", str(tmp_path / "o"), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("warning: the VM has 1 snapshot(s)")
    assert done.stdout.splitlines()[-1] == f"preflight: {vm} can be exported (no blockers, 1 warning)"
    assert done.stderr == ""


def test_a_ready_vm_exits_0_and_quiet_prints_only_the_summary(sim, make_vm, tmp_path):
    vm = make_vm()
    done = preflight_cli(sim, "-vm", vm, "-output", str(tmp_path / "out"), "-quiet")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"preflight: {vm} can be exported (no blockers)\n",
        "",
    )


def test_snapshots_are_a_warning_naming_the_snapshot_the_export_follows(sim, make_vm, tmp_path):
    vm = make_vm(snapshots=2)
    done = preflight_cli(sim, "-vm", vm, "-output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        "warning: the VM has 2 snapshot(s): the export holds its current state (after snapshot 'snap2'); "
        "the snapshots themselves are not exported (revert to the snapshot you want exported first, or "
        "consolidate if the current state is it)"
    )


@pytest.mark.stand_in_ovf  # the "previous export" is a stand-in file, not a descriptor
def test_a_completed_export_in_the_output_is_a_blocker_and_with_overwrite_a_note(sim, make_vm, tmp_path):
    vm = make_vm()
    out = tmp_path / "out"
    out.mkdir()
    name = vm.rsplit("/", 1)[-1]
    (out / f"{name}.ovf").write_text("a previous export")
    refused = preflight_cli(sim, "-vm", vm, "-output", str(out))
    assert refused.returncode == 1
    assert refused.stdout.splitlines()[0] == (
        f"blocker: {out} already holds a completed export ({name}.ovf) (pass -overwrite to replace it)"
    )
    replaced = preflight_cli(sim, "-vm", vm, "-output", str(out), "-overwrite")
    assert replaced.returncode == 0, replaced.stdout
    assert replaced.stdout.splitlines()[0].startswith(f"info: {out} holds a completed export ({name}.ovf)")
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.ovf"]


@pytest.mark.stand_in_ovf  # the other VM's export is a stand-in file, not a descriptor
def test_an_export_that_would_replace_another_vms_manifest_is_refused_as_preflight_said(
    sim, make_vm, tmp_path
):
    vm = make_vm()
    out = tmp_path / "shared"
    out.mkdir()
    (out / "db01.ovf").write_text("another VM's completed export")
    (out / "manifest.json").write_text("db01's manifest")
    said = preflight_cli(sim, "-vm", vm, "-output", str(out), "-manifest")
    assert said.returncode == 1
    assert said.stdout.splitlines()[0] == (
        f"blocker: {out} holds the completed export of another VM (db01.ovf): this export would "
        "replace its manifest.json (export each VM into a directory of its own: choose another output directory)"
    )
    done = run_in_process("hyperexport", "-vm", vm, "-output", str(out), "-manifest", "-quiet", env=govc(sim))
    assert done.returncode == 1 and "holds the completed export of another VM (db01.ovf)" in done.stderr
    assert (out / "manifest.json").read_text() == "db01's manifest"
    assert sorted(p.name for p in out.iterdir()) == ["db01.ovf", "manifest.json"]


def test_an_explicit_converter_that_is_missing_is_a_blocker(sim, make_vm, tmp_path):
    vm = make_vm()
    missing = tmp_path / "bin" / "hyper2kvm"
    done = preflight_cli(
        sim, "-vm", vm, "-output", str(tmp_path / "o"), "-convert", "-hyper2kvm-path", str(missing)
    )
    assert done.returncode == 1
    assert done.stdout.splitlines()[0].startswith(
        f"blocker: hyper2kvm not found or not executable: {missing} ("
    )


def test_an_unknown_vm_and_an_unreachable_vcenter_are_blockers(sim, tmp_path):
    done = preflight_cli(sim, "-vm", f"{FOLDER}/nope", "-output", str(tmp_path / "o"))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"blocker: VM not found: {FOLDER}/nope (give the inventory path, e.g. /dc/vm/folder/name) "
        "(check the path with `hyperctl vms list`)",
        f"preflight: {FOLDER}/nope cannot be exported (1 blocker)",
    ]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    env = govc(sim) | {"GOVC_URL": f"https://127.0.0.1:{port}/sdk"}
    unreachable = run_in_process("hyperexport", "-preflight", "-vm", f"{FOLDER}/x", env=env)
    assert unreachable.returncode == 1
    assert unreachable.stdout.startswith(f"blocker: cannot reach vCenter 127.0.0.1:{port}")
    assert sim.password not in unreachable.stdout + unreachable.stderr


def test_efi_with_secure_boot_is_a_warning_about_ovmf(sim, make_vm, tmp_path):
    vm = make_vm(firmware="efi", secure_boot=True)
    done = preflight_cli(sim, "-vm", vm, "-output", str(tmp_path / "o"), "-convert")
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if "EFI" in line]
    assert line.startswith("warning: the VM boots with EFI and secure boot: the KVM side needs UEFI firmware")
    assert "OVMF_CODE.secboot.fd" in line


# ---- preflight_spec: what POST /vms/preflight answers --------------------------------------------


def test_an_independent_disk_is_a_blocker_naming_the_disk(sim, image, make_vm, spec_of):
    vm = make_vm([DiskSpec(image), DiskSpec(None, mode="independent_nonpersistent", size_mib=1)])
    report = preflight_spec(spec_of(vm), origin="api")
    assert codes(report) == [("blocker", "independent-disk")]
    kept, independent = report.vm.disks
    assert f"{independent.label} (independent-nonpersistent)" in report.findings[0].reason
    assert kept.label not in report.findings[0].reason
    assert report.as_dict()["blocked"] is True


def test_an_rdm_is_a_blocker_naming_the_disk_and_its_mode(sim, image, make_vm, spec_of):
    vm = make_vm([DiskSpec(image), DiskSpec(None, rdm="physical", size_mib=1)])
    report = preflight_spec(spec_of(vm), origin="api")
    assert codes(report) == [("blocker", "rdm-disk")]  # a physical RDM is independent too: said once
    rdm = report.vm.disks[1]
    assert f"{rdm.label} (raw device mapping, physical compatibility)" in report.findings[0].reason


def test_a_disk_on_an_inaccessible_datastore_is_a_blocker(sim, image, make_vm, spec_of):
    sim.add_datastore("preflight-nfs")
    vm = make_vm([DiskSpec(image), DiskSpec(None, datastore="preflight-nfs", size_mib=1)])
    assert preflight_spec(spec_of(vm), origin="api").findings == []
    sim.set_datastore_accessible("preflight-nfs", False)
    try:
        report = preflight_spec(spec_of(vm), origin="api")
    finally:
        sim.set_datastore_accessible("preflight-nfs", True)
    assert codes(report) == [("blocker", "datastore-inaccessible")]
    assert (
        "preflight-nfs" in report.findings[0].reason and report.vm.disks[1].label in report.findings[0].reason
    )


def test_an_encrypted_vm_is_a_blocker(sim, make_vm, spec_of):
    report = preflight_spec(spec_of(make_vm(encrypted=True)), origin="api")
    assert codes(report) == [("blocker", "encrypted")]


def test_a_missing_export_privilege_is_a_blocker(sim, make_vm, spec_of):
    vm = make_vm()
    sim.deny_privilege("VApp.Export", entity=sim.find_vm(vm)._moId)
    try:
        report = preflight_spec(spec_of(vm), origin="api")
    finally:
        sim.reset_privileges()
    assert codes(report) == [("blocker", "no-export-privilege")]
    assert "VApp.Export" in report.findings[0].reason
    assert preflight_spec(spec_of(vm), origin="api").findings == []  # granted again


def test_connected_cdrom_and_floppy_are_warnings_and_disconnected_images_notes(sim, make_vm, spec_of):
    images = {
        "cdrom_iso": f"[{sim.datastore}] iso/install.iso",
        "floppy_image": f"[{sim.datastore}] f/boot.flp",
    }
    vm = make_vm(**images, cdrom_connected=False, floppy_connected=False)
    disconnected = codes(preflight_spec(spec_of(vm), origin="api"))
    assert disconnected == [("info", "cdrom-connected"), ("info", "floppy-connected")]  # images named only
    report = preflight_spec(spec_of(make_vm(**images)), origin="api")
    assert codes(report) == [("warning", "cdrom-connected"), ("warning", "floppy-connected")]
    assert "iso/install.iso" in report.findings[0].reason and "f/boot.flp" in report.findings[1].reason


def test_a_template_is_a_note_and_can_be_preflighted(sim, make_vm, spec_of):
    vm = make_vm(template=True)
    report = preflight_spec(spec_of(vm), origin="api")
    assert codes(report) == [("info", "template")] and report.vm.template


def test_the_answer_is_worded_for_who_asks(sim, make_vm, spec_of):
    vm = make_vm()
    sim.power_on(vm)
    (api,) = preflight_spec(spec_of(vm), origin="api").findings
    (dashboard,) = preflight_spec(spec_of(vm), origin="dashboard").findings
    assert api.action == 'shut it down first, or set "power_off": true to stop it'
    assert dashboard.action == 'shut it down first, or tick "Power off" to stop it'


def test_a_bad_spec_raises_the_field_errors_submit_gives(spec_of):
    from rest_framework.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        preflight_spec(spec_of("web01", parallel=0), origin="api")
    assert set(raised.value.detail) == {"vm_path", "parallel"}
    with pytest.raises(ValidationError):
        preflight_spec(["not", "a", "spec"], origin="api")  # type: ignore[arg-type]


def test_an_unknown_vm_is_a_finding_with_no_vm(spec_of):
    report = preflight_spec(spec_of(f"{FOLDER}/nope"), origin="api")
    assert report.vm is None and codes(report) == [("blocker", "vm-not-found")]


def test_a_configured_converter_that_vanished_is_a_blocker(sim, make_vm, spec_of, settings, tmp_path):
    gone = tmp_path / "opt" / "hyper2kvm"
    settings.HYPERSDK_HYPER2KVM_PATHS = [str(gone)]  # allowed by the administrator, not there
    report = preflight_spec(spec_of(make_vm(), convert=True, hyper2kvm_path=str(gone)), origin="api")
    assert codes(report) == [("blocker", "hyper2kvm-missing")]


def test_without_an_output_path_the_default_root_is_checked_and_nothing_collides(sim, make_vm, spec_of):
    spec = spec_of(make_vm())
    del spec["output_path"]
    assert preflight_spec(spec, origin="api").findings == []


# ---- the export and the job ------------------------------------------------------------------------


def test_an_export_with_a_blocker_stops_before_its_lease_and_writes_nothing(sim, make_vm, tmp_path):
    vm = make_vm()
    reconfigure(sim, vm, make_independent)
    out = tmp_path / "out"
    target = VCenterTarget.from_env(govc_environment(sim))
    with pytest.raises(PreflightBlocked, match="vSphere's export leaves independent disks out"):
        export_vm(ExportOptions(vm_path=vm, output_dir=out), target)
    assert not out.exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_with_a_blocker_fails_before_any_lease_with_the_reason(sim, make_vm, spec_of, redis_url):
    vm = make_vm()
    reconfigure(sim, vm, make_independent)
    sim.power_on(vm)
    spec = spec_of(vm)
    job_id = jobs.submit_jobs([spec], origin=Job.Origin.DASHBOARD).job_ids[0]
    assert job_runner.run_job(job_id) == "failed"
    job = Job.objects.get(id=job_id)
    assert job.error.startswith(
        f'VM {vm} is powered on: shut it down first, or tick "Power off" to stop it; independent disk(s) '
    )
    assert not Path(spec["output_path"]).exists()


def test_a_regular_file_in_the_output_path_is_a_blocker_naming_it(sim, make_vm, tmp_path):
    vm = make_vm()
    (tmp_path / "file").write_text("kept")
    done = preflight_cli(sim, "-vm", vm, "-output", str(tmp_path / "file" / "out"))
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"blocker: output directory {tmp_path / 'file' / 'out'} cannot be made: {tmp_path / 'file'} is a "
        "file, not a directory (move the file away, or choose another output directory)"
    )
    assert (tmp_path / "file").read_text() == "kept"


def test_an_output_path_that_is_a_file_is_a_blocker_through_the_service(sim, make_vm, spec_of, export_root):
    (export_root / "file").write_text("kept")
    report = preflight_spec(spec_of(make_vm(), output_path=str(export_root / "file")), origin="api")
    assert codes(report) == [("blocker", "output-not-writable")]
    assert report.findings[0].reason == f"output directory {export_root / 'file'} is a file, not a directory"


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_output_path_is_a_file_fails_in_preflight(sim, make_vm, spec_of, export_root, redis_url):
    (export_root / "file").write_text("kept")
    spec = spec_of(make_vm(), output_path=str(export_root / "file"))
    job_id = jobs.submit_jobs([spec], origin=Job.Origin.API).job_ids[0]
    assert job_runner.run_job(job_id) == "failed"
    error = Job.objects.get(id=job_id).error
    assert error.startswith(f"output directory {export_root / 'file'} is a file, not a directory"), error
    assert (export_root / "file").read_text() == "kept"


@pytest.mark.django_db(transaction=True)
def test_a_preflight_job_completes_with_its_findings_and_writes_nothing(sim, make_vm, spec_of, redis_url):
    vm = make_vm(snapshots=1)
    spec = spec_of(vm, preflight=True)
    job_id = jobs.submit_jobs([spec], origin=Job.Origin.API).job_ids[0]
    assert job_runner.run_job(job_id) == "completed"
    job = Job.objects.get(id=job_id)
    assert job.options["preflight"] is True
    assert job.result["preflight"] is True and job.result["files"] == []
    assert [f["code"] for f in job.result["findings"]] == ["snapshots"]
    (snapshots,) = job.result["findings"]
    logged = list(JobLog.objects.filter(job_id=job_id).values_list("level", "message"))
    assert ("warning", f"preflight: warning: {snapshots['reason']} ({snapshots['action']})") in logged
    assert not Path(spec["output_path"]).exists()


# ---- hyperexport -preflight through the daemon (POST /vms/preflight), remote and local ----------------


@pytest.mark.django_db(transaction=True)
def test_preflight_through_the_daemon_prints_the_findings_and_exits_1_on_a_blocker(
    request, sim, make_vm, cli_env, export_root
):
    register_vcenter(sim, "preflight-sim")
    vm = make_vm()
    sim.power_on(vm)
    args = ["-preflight", "-vm", vm, "-vcenter", "preflight-sim", "-output", str(export_root / "o")]
    done = run_in_process("hyperexport", "--use-daemon", *args, env=cli_env)
    remote = "remote" in request.node.callspec.id
    how = 'set "power_off": true' if remote else "pass -power-off"  # the surface that asked: API or CLI
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.splitlines() == [
        f"blocker: VM {vm} is powered on (shut it down first, or {how} to stop it)",
        f"preflight: {vm} cannot be exported (1 blocker)",
    ]
    if remote:  # --daemon-url alone says where: no --use-daemon needed for a preflight
        url = ["--daemon-url", cli_env["HYPERSDK_DAEMON_URL"]]
        again = run_in_process("hyperexport", *url, *args, "-power-off", "-quiet", env=cli_env)
        assert (again.returncode, again.stdout) == (
            0,
            f"preflight: {vm} can be exported (no blockers, 1 note)\n",
        )
    assert not Job.objects.exists(), "a preflight is no job"
    assert not (export_root / "o").exists()


@pytest.mark.django_db(transaction=True)
def test_preflight_through_the_daemon_says_a_bad_spec_in_one_line(sim, cli_env):
    done = run_in_process(
        "hyperexport", "--use-daemon", "-preflight", "-vm", f"{FOLDER}/x", "-vcenter", "nope", env=cli_env
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: vcenter: ") and "nope" in done.stderr


def test_preflight_lines_escape_a_paths_controls_and_bidi_overrides():
    """A VM path holding U+202E (or a newline, an ESC) prints escaped in the findings and the
    summary, as every other CLI output escapes it."""
    from cli.render_preflight import preflight_lines

    path = "/dc/vm/\u202egnp.exe\x1b[2J\u200b"
    finding = {
        "level": "blocker",
        "code": "powered-on",
        "reason": f"{path} is powered on",
        "action": "stop it",
    }
    lines = preflight_lines(path, [finding], quiet=False)
    assert all(line.isprintable() for line in lines)
    assert lines[0] == "blocker: /dc/vm/\\u202egnp.exe\\x1b[2J\\u200b is powered on (stop it)"
    assert lines[1].startswith("preflight: /dc/vm/\\u202egnp.exe\\x1b[2J\\u200b cannot be exported")
