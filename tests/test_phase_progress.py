"""Every phase of an export reports its bytes, and the run's percentage weighs the phases by
the bytes they move: parsing of the tools' progress, the weighting, and a real export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from exports.pipeline.convert import convert_export
from exports.pipeline.options import ExportOptions
from exports.pipeline.processes import ToolOutput, command_line, qemu_img_fraction
from exports.pipeline.progress import (
    CancelToken,
    NullReporter,
    OverallProgress,
    PhaseMeter,
    ProgressSnapshot,
    phase_weights,
)
from exports.pipeline.run import export_vm
from tests.conftest import APP01
from tests.test_export_e2e import target_of


class Recorder(NullReporter):
    def __init__(self) -> None:
        self.snapshots: list[ProgressSnapshot] = []
        self.lines: list[str] = []
        self.phase_of_line: list[tuple[str, str]] = []  # (the phase shown, the line logged)

    def progress(self, snapshot: ProgressSnapshot) -> None:
        self.snapshots.append(snapshot)

    def log(self, level: int, message: str) -> None:
        self.lines.append(message)
        self.phase_of_line.append((self.snapshots[-1].phase if self.snapshots else "", message))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_qemu_img_progress_lines_are_read_as_fractions():
    assert qemu_img_fraction("    (42.50/100%)") == pytest.approx(0.425)
    assert qemu_img_fraction("    (100.00/100%)") == 1.0
    assert qemu_img_fraction("    (0.00/100%)") == 0.0
    assert qemu_img_fraction("Images are identical.") is None
    assert qemu_img_fraction("qemu-img: Could not open 'x': No such file") is None


def test_real_qemu_img_compare_progress_rises_to_one(tmp_path):
    image = tmp_path / "a.raw"
    image.write_bytes(os.urandom(32 << 20))  # data, not holes: compare walks it in steps
    out = subprocess.run(
        ["qemu-img", "compare", "-p", str(image), str(image)], capture_output=True, text=True, check=True
    ).stdout
    # Read as run_tool reads it: universal newlines turn qemu-img's \r updates into lines.
    fractions = [f for f in map(qemu_img_fraction, out.splitlines()) if f is not None]
    assert len(fractions) > 2
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


def test_phase_weights_follow_the_bytes_each_phase_moves():
    assert phase_weights(ova=False, compress=False, convert=False, verify=False) == {"downloading": 1.0}
    assert phase_weights(ova=True, compress=True, convert=True, verify=True) == {
        "downloading": 1.0,
        "packaging": 2.0,  # gzip reads the files, the tar copies them
        "converting": 1.0,
        "verifying": 3.0,  # the SHA-256 re-read, then compare reads source and output
    }
    assert phase_weights(ova=True, compress=False, convert=False, verify=True) == {
        "downloading": 1.0,
        "packaging": 1.0,
        "verifying": 1.0,
    }


def _phase(phase: str, percent: float) -> ProgressSnapshot:
    return ProgressSnapshot(percent=percent, phase=phase)


def test_the_run_percentage_weighs_each_phase_by_its_bytes():
    out = Recorder()
    overall = OverallProgress(
        out, {"downloading": 1.0, "packaging": 1.0, "converting": 1.0, "verifying": 1.0}
    )
    overall.progress(_phase("downloading", 50.0))
    overall.progress(_phase("downloading", 100.0))
    overall.progress(_phase("packaging", 50.0))
    overall.progress(_phase("verifying", 100.0))
    assert [s.percent for s in out.snapshots] == [12.5, 25.0, 37.5, 100.0]


def test_the_run_percentage_never_goes_back_across_phase_changes_or_retries():
    out = Recorder()
    overall = OverallProgress(out, phase_weights(ova=True, compress=False, convert=True, verify=True))
    sequence = [
        _phase("connecting", 0.0),
        _phase("downloading", 60.0),
        _phase("downloading", 20.0),  # a disk retried under a new lease starts again
        _phase("waiting for export lease", 0.0),
        _phase("downloading", 100.0),
        _phase("describing", 100.0),
        _phase("packaging", 0.0),  # a phase starting at 0 % is not the run going back
        _phase("packaging", 100.0),
        _phase("manifest", 100.0),
        _phase("converting", 0.0),
        _phase("converting", 70.0),
        _phase("verifying", 0.0),
        _phase("verifying", 50.0),
        _phase("completed", 100.0),
    ]
    for snapshot in sequence:
        overall.progress(snapshot)
    percents = [s.percent for s in out.snapshots]
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    # Each weighted phase moved the number: nothing sat still while bytes moved.
    assert len(set(percents)) >= 7
    # The phase label is passed on as the phase reported it.
    assert [s.phase for s in out.snapshots] == [s.phase for s in sequence]


def test_the_eta_counts_from_the_first_byte_not_from_the_connection():
    """Connecting, the lease and the descriptor move nothing: an ETA that counted them made the
    first estimates of a 3-second transfer read 36 minutes."""
    clock, out = FakeClock(), Recorder()
    overall = OverallProgress(out, {"downloading": 1.0, "converting": 1.0}, clock=clock)
    overall.progress(_phase("connecting", 0.0))
    assert out.snapshots[-1].eta_seconds is None  # nothing done: no estimate
    clock.now += 20  # the lease took 20 s
    overall.progress(_phase("downloading", 0.2))  # the first bytes: too early to tell
    assert out.snapshots[-1].eta_seconds is None
    clock.now += 30
    overall.progress(_phase("downloading", 50.2))  # 25 % of the run in the 30 s since
    assert out.snapshots[-1].eta_seconds == pytest.approx(30 * (100 - 25.1) / 25.0)  # not 20 s more


def test_no_eta_from_a_few_milliseconds_of_work():
    clock, out = FakeClock(), Recorder()
    overall = OverallProgress(out, {"downloading": 1.0}, clock=clock)
    overall.progress(_phase("downloading", 0.1))
    clock.now += 0.05
    overall.progress(_phase("downloading", 0.2))
    assert out.snapshots[-1].eta_seconds is None


def test_a_phase_meter_counts_bytes_rate_and_reports_when_finished():
    clock, out = FakeClock(), Recorder()
    meter = PhaseMeter(out, "packaging", clock=clock)
    meter.expect("a.ova", 400)
    clock.now += 1
    meter.add("a.ova", 100)
    meter.set("a.ova", 50)  # a tool's fraction never goes back
    clock.now += 1
    meter.finish("a.ova")
    last = out.snapshots[-1]
    assert (last.phase, last.bytes_done, last.bytes_total, last.percent) == ("packaging", 400, 400, 100.0)
    assert last.rate_bps == pytest.approx(200.0)


def test_the_converter_command_line_shows_no_secret():
    shown = command_line(
        [
            "/usr/bin/hyper2kvm",
            "--manifest",
            "/out/run/manifest.json",
            "--password",
            "s3cret-pass",
            "--vcenter-token=tok-123456",
            "vpx://admin:hunter2@vc.example/dc?key=abc",
        ]
    )
    assert "s3cret-pass" not in shown and "tok-123456" not in shown
    assert "hunter2" not in shown and "abc" not in shown
    assert shown.startswith("/usr/bin/hyper2kvm --manifest /out/run/manifest.json --password '***'")


@pytest.mark.parametrize(
    ("arguments", "secret"),
    [
        (["--pass", "p4ss-word"], "p4ss-word"),
        (["--pwd", "p4ss-word"], "p4ss-word"),
        (["--vc-pass=p4ss-word"], "p4ss-word"),
        (["--auth", "Bearer abc.def"], "abc.def"),
        (["--credentials", "user:p4ss"], "p4ss"),
        (["pass=p4ss-word"], "p4ss-word"),
    ],
)
def test_short_secret_flags_are_masked_too(arguments, secret):
    assert secret not in command_line(["/usr/bin/hyper2kvm", *arguments])


def test_flags_that_only_contain_a_secret_word_keep_their_value():
    shown = command_line(["qemu-img", "convert", "-p", "-m", "8", "--bypass-cache", "/a.vmdk", "/b.qcow2"])
    assert shown == "qemu-img convert -p -m 8 --bypass-cache /a.vmdk /b.qcow2"


def test_converter_output_is_logged_bounded():
    out = Recorder()
    lines = ToolOutput(out, "hyper2kvm", limit=3)
    for n in range(10):
        lines.line(f"line {n}")
    lines.line("   ")
    lines.close()
    assert out.lines == [
        "hyper2kvm: line 0",
        "hyper2kvm: line 1",
        "hyper2kvm: line 2",
        "hyper2kvm: 7 more output line(s) not logged",
    ]


def test_hyper2kvm_conversion_reports_its_progress_source_and_duration(exported_disks, write_test_manifest):
    binary = shutil.which("hyper2kvm")
    assert binary, "hyper2kvm must be installed in the test environment"
    document = write_test_manifest(exported_disks, "qcow2")
    out = Recorder()
    report = convert_export(
        document,
        exported_disks[0].path.parent,
        hyper2kvm=binary,
        timeout_seconds=600,
        compress=False,
        reporter=out,
        cancel=CancelToken(),
    )
    for converted, disk in zip(report.outputs, document["disks"], strict=True):
        assert converted.source == disk["local_path"]
        assert converted.duration_seconds > 0
    written = json.loads((exported_disks[0].path.parent / "conversion-report.json").read_text())
    assert all(o["source"] and o["duration_seconds"] > 0 for o in written["outputs"])
    converting = [s for s in out.snapshots if s.phase == "converting"]
    # Each disk counts twice: converted, then its output hashed.
    assert converting[-1].bytes_done == converting[-1].bytes_total == 2 * sum(d.size for d in exported_disks)
    assert not any("Progress:" in line for line in out.lines)  # progress, not log lines
    assert any(line.startswith("converting: 2 disk(s) with hyper2kvm: ") for line in out.lines)


@pytest.mark.vsphere
def test_an_ova_export_reports_every_phase_in_bytes_and_logs_each_disk(
    vsphere, app01_seeds, tmp_path, monkeypatch
):
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")  # the qemu-img conversion
    out = Recorder()
    options = ExportOptions(
        vm_path=APP01, output_dir=tmp_path / "out", format="ova", convert=True, verify=True
    )
    target = target_of(vsphere)
    result = export_vm(options, target, out)

    percents = [s.percent for s in out.snapshots]
    assert percents == sorted(percents) and percents[-1] == 100.0
    for phase in ("downloading", "packaging", "converting", "verifying"):
        moving = [s for s in out.snapshots if s.phase == phase and s.bytes_total]
        assert moving, f"no byte progress in {phase}"
        assert moving[-1].bytes_done == moving[-1].bytes_total
        assert any(s.eta_seconds is not None for s in moving)
        assert all(s.rate_bps >= 0 for s in moving)
    # Each weighted phase moved the run's percentage on.
    starts = {s.phase: s.percent for s in reversed(out.snapshots)}
    assert starts["downloading"] < starts["packaging"] < starts["converting"] < starts["verifying"] < 100.0

    text = "\n".join(out.lines)
    for exported in result.files:
        assert f"{exported.name}: transfer started: capacity " in text
        assert f"{exported.name}: transferred " in text and f"sha256 {exported.sha256}" in text
        assert f"verifying: {exported.name}: sha256 matches the manifest" in text
    assert text.count("converting: app01-disk") >= 2 and "qemu-img convert -p" in text
    assert text.count(": identical to app01-disk") == 2
    assert target.password and target.password not in text
    # The phase label and the log agree: a phase's lines are logged while it is the one shown.
    for phase in ("packaging", "converting", "verifying"):
        lines = [(shown, line) for shown, line in out.phase_of_line if line.startswith(f"{phase}: ")]
        assert lines and all(shown == phase for shown, _ in lines), lines
    assert not any(line.strip().endswith("/100%)") for line in out.lines)


@pytest.mark.vsphere
def test_a_failed_disk_transfer_logs_its_reason_and_that_it_is_retried(vsphere, app01_seeds, tmp_path):
    vsphere.drop_downloads(after=1 << 20, count=1)
    out = Recorder()
    options = ExportOptions(vm_path=APP01, output_dir=tmp_path / "out", retry_backoff=0.1, max_attempts=2)
    try:
        result = export_vm(options, target_of(vsphere), out)
    finally:
        vsphere.drop_downloads(after=0, count=0)
    failed = [line for line in out.lines if "transfer failed (will retry under a new lease): " in line]
    assert len(failed) == 1 and failed[0].split(":")[0] in {f.name for f in result.files}
    retried = failed[0].split(":")[0]
    started = [i for i, line in enumerate(out.lines) if line.startswith(f"{retried}: transfer started: ")]
    assert len(started) == 2  # once per attempt, the second after the failure
    assert started[0] < out.lines.index(failed[0]) < started[1]


def test_the_job_session_writes_the_last_snapshot_of_every_phase(db, monkeypatch):
    from exports import job_runner
    from exports.job_runner import JobSession
    from exports.models import Job
    from tests.factories import make_job

    job = make_job()
    Job.objects.filter(id=job.id).update(status=Job.Status.RUNNING)
    published = []
    monkeypatch.setattr(job_runner.live, "publish_job", lambda job_id, kind, data: published.append(data))
    session = JobSession(job, CancelToken())
    for snapshot in [
        ProgressSnapshot(phase="converting", percent=30.0),
        ProgressSnapshot(phase="converting", percent=40.0),
        ProgressSnapshot(phase="verifying", percent=41.0),  # a phase within one write interval
        ProgressSnapshot(phase="completed", percent=100.0),
    ]:
        session.progress(snapshot)
    session._flush_progress()
    assert [(p["phase"], p["percent"]) for p in published] == [
        ("converting", 40.0),
        ("verifying", 41.0),
        ("completed", 100.0),
    ]
    assert Job.objects.get(id=job.id).phase == "completed"


def test_a_new_phase_is_written_before_the_log_lines_that_follow_it(transactional_db, monkeypatch):
    """The job's label and its log agree: a watcher that sees "verifying: ... matches" in the log
    never sees the job still labelled "converting" (the phase used to wait for the next write)."""
    from exports import job_runner
    from exports.job_runner import JobSession
    from exports.models import Job
    from tests.factories import make_job

    job = make_job()
    Job.objects.filter(id=job.id).update(status=Job.Status.RUNNING, phase="converting")
    job.refresh_from_db()
    events = []
    monkeypatch.setattr(
        job_runner.live, "publish_job", lambda job_id, kind, data: events.append((kind, data))
    )
    with JobSession(job, CancelToken(), progress_interval=3600) as session:
        session.progress(ProgressSnapshot(phase="converting", percent=40.0))
        session.progress(ProgressSnapshot(phase="verifying", percent=41.0))
        session.log(20, "verifying: web01-disk1.vmdk sha256 matches")
    kinds = [(kind, data.get("phase") or data.get("message")) for kind, data in events]
    assert kinds.index(("job.progress", "verifying")) < kinds.index(
        ("job.log", "verifying: web01-disk1.vmdk sha256 matches")
    )


def test_the_job_panel_shows_the_phase_rate_and_eta_without_a_websocket(operator_browser):
    """The htmx fallback (no websocket) renders what live.js writes: rate and ETA, IEC units."""
    from django.urls import reverse

    from exports.models import Job
    from tests.factories import make_job

    job = make_job(
        status=Job.Status.RUNNING,
        phase="converting",
        percent=42.0,
        bytes_done=300 << 20,
        bytes_total=1 << 30,
        rate_bps=3 << 20,
        eta_seconds=125.0,
    )
    page = operator_browser.get(reverse("dashboard:job-live", args=[job.id])).content.decode()
    assert 'data-field="phase">converting<' in page
    assert 'data-field="rate">3.0 MiB/s<' in page
    assert 'data-field="eta">ETA 2m 5s<' in page
    Job.objects.filter(id=job.id).update(status=Job.Status.COMPLETED)
    finished = operator_browser.get(reverse("dashboard:job-live", args=[job.id])).content.decode()
    assert 'data-field="eta"><' in finished and 'data-field="rate"><' in finished


def test_the_terminal_bar_shows_the_whole_runs_percentage_not_the_phases():
    """Converting the last bytes of a disk is 100 % of that phase but 60 % of the run: a terminal
    bar that showed the phase's share would jump back to 0 at the next phase."""
    import io

    from cli.console import BarReporter

    stream = io.StringIO()
    reporter = BarReporter(stream)
    reporter.progress(
        ProgressSnapshot(
            percent=60.0,
            phase="converting",
            current_file="web01-disk1.vmdk",
            bytes_done=1024**3,
            bytes_total=1024**3,
            rate_bps=50 * 1024**2,
            eta_seconds=65,
        )
    )
    reporter.close()
    text = stream.getvalue()
    assert " 60.0%" in text and "100.0%" not in text
    assert "1.0 GiB/1.0 GiB 50.0 MiB/s ETA 1m 5s" in text


def test_hashing_each_converted_output_moves_the_converting_phase_on(exported_disks, write_test_manifest):
    """After qemu-img ends, the SHA-256 of a big raw output still takes a while: the phase keeps
    moving through it instead of sitting at its end."""
    document = write_test_manifest(exported_disks, "raw")
    out = Recorder()
    convert_export(
        document,
        exported_disks[0].path.parent,
        hyper2kvm=None,
        timeout_seconds=600,
        compress=False,
        reporter=out,
        cancel=CancelToken(),
    )
    outputs = {f"{disk['id']}.raw" for disk in document["disks"]}
    hashing = [s for s in out.snapshots if s.phase == "converting" and s.current_file in outputs]
    assert {s.current_file for s in hashing} == outputs
    done = [s.bytes_done for s in hashing]
    assert done == sorted(done) and done[-1] == hashing[-1].bytes_total


def test_between_hyper2kvm_steps_its_output_growth_moves_the_disk_never_past_the_next_step(tmp_path):
    from exports.pipeline.convert import _Hyper2kvmProgress
    from exports.pipeline.processes import ToolOutput

    size = 100 << 20
    converted = tmp_path / "converted"
    converted.mkdir()
    out = Recorder()
    meter = PhaseMeter(out, "converting", max_rate_hz=1e9)
    meter.expect("d1.vmdk", size)
    fd = os.open(converted, os.O_RDONLY | os.O_DIRECTORY)
    try:
        progress = _Hyper2kvmProgress(
            {"disks": [{"id": "d1", "path": "d1.vmdk", "size": size}]},
            meter,
            ToolOutput(out, "hyper2kvm"),
            fd,
        )
        progress.line("Converting disk: d1")
        progress.line("Progress: 10%")
        (converted / "d1.qcow2").write_bytes(os.urandom(15 << 20))
        progress.tick()
        assert 10 << 20 < out.snapshots[-1].bytes_done <= 15 << 20  # moved by what was written
        (converted / "d1.qcow2").write_bytes(os.urandom(60 << 20))
        progress.tick()
        assert out.snapshots[-1].bytes_done < size // 5  # but not past hyper2kvm's next 10 %
        progress.line("Progress: 30%")
        assert out.snapshots[-1].bytes_done == int(0.3 * size)
    finally:
        os.close(fd)


def test_compress_compresses_a_qcow2_that_hyper2kvm_converts(exported_disks, write_test_manifest):
    """-compress -convert compressed the qcow2 only on the qemu-img path: hyper2kvm was never told."""
    binary = shutil.which("hyper2kvm")
    assert binary, "hyper2kvm must be installed in the test environment"
    document = write_test_manifest(exported_disks, "qcow2", compressed=True)
    assert document["pipeline"]["convert"] == {"enabled": True, "compress": True}
    convert_export(
        document,
        exported_disks[0].path.parent,
        hyper2kvm=binary,
        timeout_seconds=600,
        compress=True,
        reporter=Recorder(),
        cancel=CancelToken(),
    )
    report = json.loads((exported_disks[0].path.parent / "converted" / "report.json").read_text())
    assert report["pipeline"]["stages"]["convert"]["result"]["compressed"] is True
