"""Preflight's pure part, ``inventory.checks.check``: a VM record, the export's options and
the host's facts in, findings out. The simulator tests (test_preflight.py) read real VMs; here
are the rules each finding follows (levels, wording per surface, the space an export needs),
including those the simulator cannot show (a full file system: free space is read from a real
one with ``host_facts`` and the VM made larger than it)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from exports.pipeline.errors import PreflightBlocked
from exports.pipeline.options import ExportOptions
from exports.pipeline.preflight import free_bytes, host_facts, written_names
from exports.pipeline.run import STEPS
from inventory.checks import HostFacts, check, required_bytes
from inventory.findings import LEVELS, Finding
from inventory.preflight import PreflightReport
from inventory.records import DriveRecord
from tests.factories import disk_record, vm_record

GIB = 1 << 30
VM_PATH = "/dc/vm/prod/web01"


disk = disk_record
vm = vm_record


def options(**changes) -> ExportOptions:
    return ExportOptions(vm_path=VM_PATH, output_dir=Path("/exports/web01"), **changes)


HOST = HostFacts(output_dir="/exports/web01", free_bytes=100 * GIB, hyper2kvm="/usr/bin/hyper2kvm")


def codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.level, f.code) for f in findings]


def test_a_plain_powered_off_vm_has_nothing_to_say():
    assert check(vm(), options(), HOST) == []


def test_every_finding_is_one_line_with_a_known_level():
    record = vm(
        power_state="on",
        encrypted=True,
        template=True,
        firmware="efi",
        secure_boot=True,
        snapshot_count=2,
        current_snapshot="before upgrade",
        disks=(
            disk(),
            disk("Hard disk 2", mode="independent_persistent"),
            disk("Hard disk 3", rdm="physical"),
        ),
        drives=(DriveRecord("CD/DVD drive 1", "cdrom", "[ds] iso/x.iso", True, True),),
    )
    host = replace(HOST, free_bytes=0, completed=("web01.ovf",), can_export=False, hyper2kvm_missing="/x")
    found = check(record, options(convert=True), host)
    assert len(found) >= 10
    for finding in found:
        assert finding.level in LEVELS
        assert "\n" not in finding.reason + finding.action and finding.reason and finding.action
    levels = [f.level for f in found]
    assert levels == sorted(levels, key=LEVELS.index), "blockers first, then warnings, then notes"


def test_a_running_vm_is_a_blocker_worded_like_the_export_refusal_per_surface():
    record = vm(power_state="on")
    (cli,) = check(record, options(), HOST)
    assert (cli.level, cli.code) == ("blocker", "powered-on")
    assert f"{cli.reason}: {cli.action}" == (
        f"VM {VM_PATH} is powered on: shut it down first, or pass -power-off to stop it"
    )
    (dashboard,) = check(record, options(), replace(HOST, surface="dashboard"))
    assert dashboard.action == 'shut it down first, or tick "Power off" to stop it'  # the converter's box
    (api,) = check(record, options(), replace(HOST, surface="api"))
    assert api.action == 'shut it down first, or set "power_off": true to stop it'


def test_a_running_vm_with_power_off_is_a_note_that_it_will_be_stopped():
    (note,) = check(vm(power_state="on"), options(power_off=True), HOST)
    assert codes([note]) == [("info", "powered-on")]
    assert "guest shutdown" in note.reason and "5 min" in note.reason


def test_a_suspended_vm_is_refused_too_and_its_memory_state_is_said_lost_with_power_off():
    (refused,) = check(vm(power_state="suspended"), options(), HOST)
    assert refused.reason == f"VM {VM_PATH} is suspended" and refused.level == "blocker"
    (note,) = check(vm(power_state="suspended"), options(power_off=True), HOST)
    assert "suspended memory state is discarded" in note.reason


def test_snapshots_say_what_is_exported():
    (finding,) = check(vm(snapshot_count=3, current_snapshot="before upgrade"), options(), HOST)
    assert codes([finding]) == [("warning", "snapshots")]
    assert (
        "3 snapshot(s): the export holds its current state (after snapshot 'before upgrade')"
        in finding.reason
    )


def test_independent_and_rdm_disks_are_blockers_naming_each_disk():
    record = vm(
        disks=(
            disk(),
            disk("Hard disk 2", mode="independent_persistent"),
            disk("Hard disk 3", mode="independent_nonpersistent"),
            disk("Hard disk 4", rdm="physical", mode="independent_persistent"),
        )
    )
    found = check(record, options(), HOST)
    assert codes(found) == [("blocker", "independent-disk"), ("blocker", "rdm-disk")]
    assert "Hard disk 2 (independent-persistent), Hard disk 3 (independent-nonpersistent)" in found[0].reason
    assert "Hard disk 1" not in found[0].reason
    assert "Hard disk 4 (raw device mapping, physical compatibility)" in found[1].reason


def test_a_disk_on_an_inaccessible_datastore_is_a_blocker_naming_it():
    record = vm(disks=(disk(), disk("Hard disk 2", datastore="nfs-gone", datastore_accessible=False)))
    (finding,) = check(record, options(), HOST)
    assert codes([finding]) == [("blocker", "datastore-inaccessible")]
    assert "Hard disk 2" in finding.reason and "nfs-gone" in finding.reason


def test_connected_drives_are_warnings_and_a_disconnected_image_a_note():
    record = vm(
        drives=(
            DriveRecord("CD/DVD drive 1", "cdrom", "[ds] iso/ubuntu.iso", True, True),
            DriveRecord("Floppy drive 1", "floppy", "[ds] f/boot.flp", False, True),
            DriveRecord("CD/DVD drive 2", "cdrom", "[ds] iso/old.iso", False, False),
            DriveRecord("CD/DVD drive 3", "cdrom", "", False, False),  # empty: nothing to say
        )
    )
    found = check(record, options(), HOST)
    assert codes(found) == [
        ("warning", "cdrom-connected"),
        ("warning", "floppy-connected"),
        ("info", "cdrom-connected"),
    ]
    assert "[ds] iso/ubuntu.iso" in found[0].reason and "not exported" in found[0].reason


def test_a_powered_off_vms_drive_is_judged_by_whether_it_connects_at_power_on():
    """vCenter says connected=false for every drive of a powered-off VM: start_connected decides,
    and the reason says "connects at power-on", never "is connected"."""
    record = vm(
        power_state="off",
        drives=(
            DriveRecord("CD/DVD drive 1", "cdrom", "[ds] iso/ubuntu.iso", False, True),
            DriveRecord("CD/DVD drive 2", "cdrom", "[ds] iso/stale.iso", True, False),
        ),
    )
    found = check(record, options(), HOST)
    assert codes(found) == [("warning", "cdrom-connected"), ("info", "cdrom-connected")]
    assert "connects at power-on to image [ds] iso/ubuntu.iso" in found[0].reason
    assert "is connected" not in found[0].reason
    on = check(vm(power_state="on", drives=record.drives[:1]), options(), HOST)
    assert "connects at power-on" in next(f.reason for f in on if f.code == "cdrom-connected")


def test_a_client_or_host_device_is_not_told_to_copy_an_iso():
    record = vm(
        drives=(DriveRecord("CD/DVD drive 1", "cdrom", "", False, True, "RemotePassthroughBackingInfo"),)
    )
    [finding] = [f for f in check(record, options(), HOST) if f.code == "cdrom-connected"]
    assert "a client or host device" in finding.reason
    assert "ISO" not in finding.action and "copy" not in finding.action
    assert "disconnect the drive" in finding.action


def test_an_encrypted_vm_is_a_blocker():
    assert codes(check(vm(encrypted=True), options(), HOST)) == [("blocker", "encrypted")]


def test_a_template_is_exported_as_a_vm_a_note():
    assert codes(check(vm(template=True), options(), HOST)) == [("info", "template")]


def test_a_completed_export_is_a_blocker_without_overwrite_worded_like_the_refusal():
    host = replace(HOST, completed=("web01.ovf",), existing=("web01-disk1.vmdk",))
    (cli,) = check(vm(), options(), host)
    assert f"{cli.reason}: {cli.action}" == (
        "/exports/web01 already holds a completed export (web01.ovf): pass -overwrite to replace it"
    )
    (dashboard,) = check(vm(), options(), replace(host, surface="dashboard"))
    assert dashboard.action == 'tick "Overwrite" to replace it'
    (note,) = check(vm(), options(overwrite=True), host)
    assert codes([note]) == [("info", "name-collision")] and "replaces it" in note.reason


def test_loose_files_of_the_exports_names_are_a_warning_they_will_be_replaced():
    (finding,) = check(vm(), options(), replace(HOST, existing=("web01-disk1.vmdk", "manifest.json")))
    assert codes([finding]) == [("warning", "name-collision")]
    assert "web01-disk1.vmdk, manifest.json" in finding.reason


def test_another_vms_export_whose_files_this_one_would_replace_is_a_blocker(tmp_path):
    out = tmp_path / "shared"
    (out / "converted").mkdir(parents=True)
    for name in ("db01.ovf", "db01-disk1.vmdk", "manifest.json", "conversion-report.json"):
        (out / name).write_text("x")
    wanted = ExportOptions(vm_path=VM_PATH, output_dir=out, manifest=True, convert=True)
    facts = host_facts(wanted, vm(), steps=STEPS, hyper2kvm="/usr/bin/hyper2kvm")
    assert facts.others_completed == ("db01.ovf",) and facts.completed == ()
    assert set(facts.others_replaced) == {"manifest.json", "converted", "conversion-report.json"}
    (finding,) = [f for f in check(vm(), wanted, facts) if f.code == "name-collision"]
    # Not "not a completed export": db01's is one, and its manifest would be this export's.
    assert (finding.level, finding.code) == ("blocker", "name-collision")
    assert finding.reason.startswith(
        f"{out} holds the completed export of another VM (db01.ovf): this export"
    )
    assert "manifest.json" in finding.reason and "not a completed export" not in finding.reason


def test_another_vms_export_beside_which_this_one_writes_only_its_own_files_is_no_finding(tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    for name in ("db01.ovf", "db01-disk1.vmdk", "manifest.json"):
        (out / name).write_text("x")
    wanted = ExportOptions(vm_path=VM_PATH, output_dir=out)  # no manifest, no conversion
    facts = host_facts(wanted, vm(), steps=STEPS)
    assert facts.others_completed == ("db01.ovf",) and facts.others_replaced == ()
    assert [f for f in check(vm(), wanted, facts) if f.code == "name-collision"] == []


def test_the_space_an_export_needs_counts_packing_and_conversion():
    record = vm(
        estimated_export_bytes=3 * GIB,
        disks=(disk(allocated_bytes=4 * GIB), disk("Hard disk 2", allocated_bytes=None, capacity_bytes=GIB)),
    )
    assert required_bytes(record, options())[0] == 3 * GIB
    assert required_bytes(record, options(format="ova"))[0] == 6 * GIB  # disks, then the tar
    assert required_bytes(record, options(format="ova", compress=True))[0] == 9 * GIB  # + gzip copies
    total, parts = required_bytes(record, options(format="ova", convert=True))
    assert total == 6 * GIB + 5 * GIB  # allocated, else capacity
    assert parts[-1] == "5.0 GiB of qcow2 output"
    left_out = replace(record, disks=(*record.disks, disk("Hard disk 3", mode="independent_persistent")))
    assert required_bytes(left_out, options(convert=True))[0] == 3 * GIB + 5 * GIB


def test_free_space_below_the_need_is_a_blocker_read_from_the_real_file_system(tmp_path):
    # No file system here is small enough to fill: the real free space of tmp_path's is read
    # (statvfs, through host_facts), and the VM is made a GiB larger than it.
    free = free_bytes(tmp_path / "not" / "made" / "yet")
    stats = os.statvfs(tmp_path)
    assert free is not None and abs(free - stats.f_bavail * stats.f_frsize) < 64 << 20
    fits = vm(estimated_export_bytes=free // 2 - GIB)
    wanted = ExportOptions(vm_path=VM_PATH, output_dir=tmp_path / "web01")
    assert check(fits, wanted, host_facts(wanted, fits, steps=STEPS, hyper2kvm=None)) == []
    too_big = vm(estimated_export_bytes=free + GIB)
    (finding,) = check(too_big, wanted, host_facts(wanted, too_big, steps=STEPS, hyper2kvm=None))
    assert codes([finding]) == [("blocker", "free-space")]
    assert f"where {tmp_path / 'web01'} is" in finding.reason
    # The same VM fits on its own but not packed into an OVA: the OVA's copy counts.
    half = vm(estimated_export_bytes=free // 2 + GIB)
    ova = replace(wanted, format="ova")
    assert check(half, wanted, host_facts(wanted, half, steps=STEPS)) == []
    assert codes(check(half, ova, host_facts(ova, half, steps=STEPS))) == [("blocker", "free-space")]


def test_host_facts_find_the_names_this_export_writes_in_the_output_directory(tmp_path):
    out = tmp_path / "web01"
    out.mkdir()
    for name in ("web01.ovf", "web01-disk1.vmdk", "manifest.json", "someone-else.txt"):
        (out / name).write_text("x")
    wanted = ExportOptions(vm_path=VM_PATH, output_dir=out)
    facts = host_facts(wanted, vm(), steps=STEPS)
    assert facts.completed == ("web01.ovf",)
    assert facts.existing == ("web01-disk1.vmdk",)  # no manifest is written without -manifest
    with_manifest = host_facts(replace(wanted, manifest=True), vm(), steps=STEPS)
    assert with_manifest.existing == ("web01-disk1.vmdk", "manifest.json")
    fresh = host_facts(wanted, vm(), steps=STEPS, fresh_directory=True)
    assert (fresh.completed, fresh.existing) == ((), ())


def test_the_names_written_follow_the_format_the_disks_and_the_firmware():
    two = vm(firmware="efi", disks=(disk(), disk("Hard disk 2"), disk("Hard disk 3", rdm="virtual")))
    markers, others = written_names(options(format="ova", convert=True), two, STEPS)
    assert markers == ["web01.ovf", "web01.ova"]
    assert others == [
        "web01-disk1.vmdk",
        "web01-disk2.vmdk",
        "web01.nvram",
        "manifest.json",
        "converted",
        "conversion-report.json",
    ]


def test_an_explicit_converter_that_cannot_run_is_a_blocker_and_none_found_a_note():
    missing = replace(HOST, hyper2kvm=None, hyper2kvm_missing="/opt/h2k/bin/hyper2kvm")
    (blocker,) = check(vm(), options(convert=True), missing)
    assert codes([blocker]) == [("blocker", "hyper2kvm-missing")]
    assert blocker.reason == "hyper2kvm not found or not executable: /opt/h2k/bin/hyper2kvm"
    (note,) = check(vm(), options(convert=True), replace(HOST, hyper2kvm=None))
    assert codes([note]) == [("info", "hyper2kvm-missing")] and "qemu-img" in note.reason
    assert check(vm(), options(), missing) == [], "no conversion asked: no converter needed"


@pytest.mark.parametrize(
    ("secure", "target", "level", "words"),
    [
        (False, "qcow2", "info", "OVMF"),
        (True, "qcow2", "warning", "OVMF_CODE.secboot.fd"),
        (False, "vdi", "info", "Enable EFI"),
        (True, "vdi", "warning", "VirtualBox before 7.0 has no secure boot"),
    ],
)
def test_efi_firmware_says_what_the_target_needs(secure, target, level, words):
    record = vm(firmware="efi", secure_boot=secure)
    (finding,) = check(record, options(convert=True, manifest_target=target), HOST)
    assert (finding.level, finding.code) == (level, "firmware-efi")
    assert words in finding.reason + finding.action


def test_a_missing_export_privilege_is_a_blocker_and_an_unknown_one_is_silent():
    (finding,) = check(vm(), options(), replace(HOST, can_export=False))
    assert codes([finding]) == [("blocker", "no-export-privilege")] and "VApp.Export" in finding.reason
    assert check(vm(), options(), replace(HOST, can_export=None)) == []
    assert check(vm(), options(), replace(HOST, can_export=True)) == []


def test_the_report_says_blocked_and_lists_the_vm_summary():
    report = PreflightReport(vm(), check(vm(encrypted=True), options(), HOST))
    data = report.as_dict()
    assert data["blocked"] is True and data["vm"]["name"] == "web01" and "disks" not in data["vm"]
    assert data["findings"][0]["code"] == "encrypted"
    assert PreflightReport(None, []).as_dict() == {"vm": None, "findings": [], "blocked": False}


def test_the_blocked_error_lists_every_blocker_in_each_surfaces_words():
    record = vm(power_state="on", encrypted=True, snapshot_count=1)
    error = PreflightBlocked(lambda surface: check(record, options(), replace(HOST, surface=surface)))
    assert str(error).startswith(f"VM {VM_PATH} is powered on: shut it down first, or pass -power-off")
    assert "; the VM is encrypted" in str(error) and "snapshot" not in str(error)
    assert error.worded_for("dashboard").startswith(
        f'VM {VM_PATH} is powered on: shut it down first, or tick "Power off" to stop it; '
    )


def test_an_output_no_file_can_go_to_is_a_blocker_and_its_free_space_moot(tmp_path):
    host = replace(HOST, writable=False, free_bytes=0)
    (finding,) = check(vm(), options(), host)
    assert codes([finding]) == [("blocker", "output-not-writable")]
    assert finding.reason == "output directory /exports/web01 is not writable"
    wanted = ExportOptions(vm_path=VM_PATH, output_dir=tmp_path / "a" / "b")
    assert host_facts(wanted, vm(), steps=STEPS).writable is True  # made under tmp_path


@pytest.mark.parametrize(
    "below", [(), ("out",), ("out", "deeper")], ids=["the file", "below it", "two below"]
)
def test_a_regular_file_where_the_output_directory_goes_is_a_blocker_naming_it(tmp_path, below):
    (tmp_path / "file").write_text("x")
    output = Path(tmp_path / "file", *below)
    host = host_facts(ExportOptions(vm_path=VM_PATH, output_dir=output), vm(), steps=STEPS)
    assert (host.writable, host.file_in_the_way) == (False, str(tmp_path / "file"))
    (finding,) = check(vm(), options(), host)
    assert codes([finding]) == [("blocker", "output-not-writable")]
    assert finding.reason.endswith(f"{tmp_path / 'file'} is a file, not a directory")
    assert finding.reason.startswith(f"output directory {output}")
    assert finding.action == "move the file away, or choose another output directory"


@pytest.mark.parametrize("state", ["disconnected", "inaccessible", "invalid", "orphaned"])
def test_a_vm_vcenter_cannot_read_is_a_blocker_before_the_others(state):
    findings = check(vm(connection_state=state, power_state="on", cpus=0, disks=()), options(), HOST)
    assert codes(findings)[0] == ("blocker", "vm-inaccessible")
    assert findings[0].reason == (
        f"VM {VM_PATH} is {state}: vCenter cannot read the VM's configuration (its datastore is down, "
        "or the VM is orphaned)"
    )
    assert "bring the datastore back or re-register the VM" in findings[0].action
    assert ("blocker", "vm-inaccessible") not in codes(check(vm(), options(), HOST))
