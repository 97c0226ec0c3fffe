"""One job never destroys another's data (issue 11 §2): a job owns its output directory while
it runs, a run undoes only what it recorded creating, a failure in any phase leaves the
previous export or nothing, writes stay in the directory opened at the start, and a completed
job whose files were removed says so."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cli.render import job_detail, job_table
from exports import job_queue, jobs
from exports.api.serializers import JobSerializer
from exports.models import Job, VCenter
from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import (
    ConversionError,
    ExportCancelled,
    ExportError,
    OutputError,
    VerificationError,
)
from exports.pipeline.options import ExportOptions
from exports.pipeline.output import OutputDir, discard_run
from exports.pipeline.progress import CancelToken, NullReporter, ProgressSnapshot
from exports.pipeline.run import export_vm
from hypersdk.lib.permissions import grant_role
from schedules import run_retention
from tests.concurrent_claims import claim_at_once
from tests.conftest import APP01, fire_at, govc_environment, wait_for
from tests.factories import make_job


def submit(operator_api: APIClient, output: Path, vm: str = APP01):
    return operator_api.post("/jobs/submit", {"vm_path": vm, "output_path": str(output)}, format="json")


def visible_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")) if directory.exists() else []


# ---- a job owns its output directory while it is pending or running -------------------------


@pytest.mark.parametrize("second", ["n", "n/inner", "."], ids=["same", "inside", "around"])
def test_submit_refuses_a_path_an_active_job_owns_and_names_that_job(operator_api, export_root, second):
    first = submit(operator_api, export_root / "n")
    assert first.status_code == 202, first.json()
    owner = first.json()["job_ids"][0]

    response = submit(operator_api, (export_root / second).resolve(), vm="/dc/vm/prod/web01")

    assert response.status_code == 400
    (message,) = response.json()["output_path"]
    assert message.startswith(f"in use by job {owner} (pending, {APP01} -> {export_root / 'n'})")
    assert Job.objects.count() == 1


def test_submit_accepts_a_path_beside_or_once_the_owner_finished(operator_api, export_root):
    owner = submit(operator_api, export_root / "n").json()["job_ids"][0]
    assert submit(operator_api, export_root / "n2").status_code == 202  # a sibling, not inside
    Job.objects.filter(id=owner).update(status=Job.Status.COMPLETED)
    assert submit(operator_api, export_root / "n" / "inner").status_code == 202


def test_two_jobs_of_one_batch_cannot_share_a_path(operator_api, export_root):
    body = {"jobs": [{"vm_path": APP01, "output_path": str(export_root / "same")}] * 2}
    response = operator_api.post("/jobs/submit", body, format="json")
    assert response.status_code == 202
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (1, 1)
    assert result["errors"][0]["index"] == 1
    assert result["errors"][0]["errors"]["output_path"][0].startswith(f"in use by job {result['job_ids'][0]}")


def test_a_batch_refuses_a_spec_inside_or_around_an_earlier_one_naming_it(operator_api, export_root):
    paths = ["n", "n/inner", "m/inner", "m", "N", "n2"]
    body = {"jobs": [{"vm_path": APP01, "output_path": str(export_root / path)} for path in paths]}
    result = operator_api.post("/jobs/submit", body, format="json").json()

    # n, m/inner, N (another name: exact, case-sensitive) and n2 (a sibling) are accepted.
    assert result["accepted"] == 4
    owners = dict(zip(["n", "m/inner", "N", "n2"], result["job_ids"], strict=True))
    refused = {error["index"]: error["errors"]["output_path"][0] for error in result["errors"]}
    assert refused[1].startswith(f"in use by job {owners['n']} (pending, {APP01} -> {export_root / 'n'})")
    assert refused[3].startswith(f"in use by job {owners['m/inner']} (pending, ")
    assert set(refused) == {1, 3}


def test_a_batch_refuses_a_path_around_two_active_jobs_naming_the_oldest(operator_api, export_root):
    older = submit(operator_api, export_root / "a" / "z").json()["job_ids"][0]
    submit(operator_api, export_root / "a" / "b")
    body = {"jobs": [{"vm_path": APP01, "output_path": str(export_root / "a")}]}
    (error,) = operator_api.post("/jobs/submit", body, format="json").json()["errors"]
    assert error["errors"]["output_path"][0].startswith(f"in use by job {older} ")


def test_a_batch_submit_costs_the_same_lookups_for_10_or_300_specs(operator_api, export_root):
    def specs(count: int, prefix: str) -> dict:
        return {
            "jobs": [{"vm_path": f"/dc/vm/prod/{prefix}{n}"} for n in range(count)]
            + [{"vm_path": APP01, "output_path": str(export_root / f"{prefix}-{n}")} for n in range(count)]
        }

    with CaptureQueriesContext(connection) as small:
        assert operator_api.post("/jobs/submit", specs(10, "a"), format="json").json()["accepted"] == 20
    with CaptureQueriesContext(connection) as large:
        assert operator_api.post("/jobs/submit", specs(300, "b"), format="json").json()["accepted"] == 600

    # bulk inserts come in chunks of the database's parameter limit; every other query is one per batch.
    def lookups(queries: CaptureQueriesContext) -> list[str]:
        return [query["sql"] for query in queries.captured_queries if not query["sql"].startswith("INSERT")]

    assert len(lookups(large)) == len(lookups(small))


def test_a_claim_fails_a_job_whose_path_a_running_job_owns(db, export_root):
    # Both pending (as two submits racing each other would leave them): the claim decides.
    outer = make_job(APP01, str(export_root / "n"))
    inner = make_job(APP01, str(export_root / "n" / "inner"))
    assert job_queue.claim_job(outer.id, "w1") is not None

    assert job_queue.claim_job(inner.id, "w2") is None

    inner.refresh_from_db()
    assert inner.status == Job.Status.FAILED
    assert inner.error.startswith(f"output path refused: in use by job {outer.id} (running, ")


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_path_start_exactly_one_job(export_root):
    # Each on a vCenter of its own: the per-vCenter claim lock does not serialise them.
    contenders = [
        make_job(
            APP01,
            str(export_root / "same"),
            vcenter=VCenter.objects.create(name=f"vc{index}", url=f"vc{index}.example", username="u"),
        )
        for index in range(4)
    ]
    claimed, errors = claim_at_once([job.id for job in contenders])

    assert errors == []
    assert len(claimed) == 1
    statuses = sorted(Job.objects.values_list("status", flat=True))
    assert statuses == ["failed", "failed", "failed", "running"]


def test_a_schedule_firing_into_an_occupied_path_fails_that_run_naming_the_owner(
    operator_api, export_root, redis_url, django_capture_on_commit_callbacks
):
    from hypersdk.lib import events

    owner = submit(operator_api, export_root / "web01").json()["job_ids"][0]
    schedule = operator_api.post(
        "/schedules",
        {
            "name": "nightly",
            "cron": "0 2 * * *",
            "vm_path": "/dc/vm/prod/web01",
            "output_path": str(export_root / "web01"),
        },
        format="json",
    ).json()
    seen: list[tuple[str, dict]] = []
    events.subscribe(lambda event, data: seen.append((event, data)))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = operator_api.post(f"/schedules/{schedule['id']}/trigger")
    finally:
        events._subscribers.pop()

    assert response.status_code == 202
    run = Job.objects.get(id=response.json()["job_id"])
    assert run.status == Job.Status.FAILED
    assert run.error.startswith(f"output path refused: in use by job {owner} (pending, ")
    assert ("job.failed", run.id) in [(event, data.get("job_id")) for event, data in seen]
    assert Job.objects.get(id=owner).status == Job.Status.PENDING  # the owner is untouched


# ---- cleanup removes only what this run recorded creating -----------------------------------


def test_discarding_a_run_keeps_another_jobs_export_inside_the_directory_it_made(tmp_path):
    outer = OutputDir(tmp_path / "n", "job-a")
    outer.prepare(completed_marker_names=["a.ovf"], overwrite=False)
    outer.track("a-disk1.vmdk")
    (outer.path / "a-disk1.vmdk").write_bytes(b"half of a")
    theirs = tmp_path / "n" / "inner"  # B's completed export, made while A ran
    theirs.mkdir()
    (theirs / "b.ovf").write_text("b")

    outer.discard()

    assert files_under(tmp_path / "n") == ["inner", "inner/b.ovf"]


def test_the_reaper_undoes_a_dead_runs_record_and_nothing_else(db, tmp_path):
    output = tmp_path / "operator-made"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    (output / "web01-disk1.vmdk").write_text("another VM's disk, same directory")
    run = OutputDir(output, "job-dead")
    run.prepare(completed_marker_names=["app01.ovf"], overwrite=False)
    run.track("app01-disk1.vmdk")
    (output / "app01-disk1.vmdk").write_bytes(b"finished before the worker died")
    run.track("app01-disk2.vmdk")
    (output / "app01-disk2.vmdk.part").write_bytes(b"half")
    run._close()  # the worker dies: nothing of the run's memory survives but its record
    job = make_job(APP01, str(output), status="running", id="job-dead")

    job_queue.remove_partial_output(job)

    assert files_under(output) == ["notes.txt", "web01-disk1.vmdk"]
    assert not discard_run(output, "job-dead")  # nothing recorded any more


def test_a_directory_the_run_made_goes_only_when_empty(tmp_path):
    run = OutputDir(tmp_path / "a" / "b", "r1")
    run.prepare(completed_marker_names=[], overwrite=False)
    run.track("x.vmdk")
    (run.path / "x.vmdk").write_text("x")
    run.discard()
    assert list(tmp_path.iterdir()) == []


# ---- against the vSphere test server: failures in any phase, overwrite, symlink swaps -------


def target_of(sim) -> VCenterTarget:
    return VCenterTarget.from_env(govc_environment(sim))


def fake_hyper2kvm(directory: Path, body: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "hyper2kvm"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.vsphere
def test_a_failed_conversion_leaves_nothing_and_a_rerun_is_not_refused(vsphere, app01_seeds, tmp_path):
    out = tmp_path / "out"
    broken = fake_hyper2kvm(tmp_path / "bin", "echo 'converter exploded' >&2; exit 3")
    options = ExportOptions(vm_path=APP01, output_dir=out, convert=True, hyper2kvm_path=broken)

    with pytest.raises(ConversionError, match="converter exploded"):
        export_vm(options, target_of(vsphere))
    assert not out.exists()

    result = export_vm(ExportOptions(vm_path=APP01, output_dir=out), target_of(vsphere))
    assert Path(result.package) == out / "app01.ovf"


@pytest.mark.vsphere
def test_a_cancel_during_conversion_leaves_the_operators_directory_as_it_was(vsphere, app01_seeds, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the operator's")
    started = tmp_path / "converter-started"
    # The converter announces it runs, then blocks until killed: the job is held in "converting".
    hanging = fake_hyper2kvm(tmp_path / "bin", f"touch {started}\nexec sleep 600")
    cancel = CancelToken()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            export_vm(
                ExportOptions(vm_path=APP01, output_dir=out, convert=True, hyper2kvm_path=hanging),
                target_of(vsphere),
                cancel=cancel,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(started.exists, message="the converter to start")
    cancel.cancel()
    thread.join()

    assert [type(exc) for exc in outcome] == [ExportCancelled]
    assert files_under(out) == ["notes.txt"]


@pytest.mark.vsphere
def test_a_failed_overwrite_leaves_the_previous_export_untouched(vsphere, app01_seeds, tmp_path):
    out = tmp_path / "out"
    export_vm(ExportOptions(vm_path=APP01, output_dir=out, manifest=True), target_of(vsphere))
    before = {name: (out / name).read_bytes() for name in files_under(out)}
    broken = fake_hyper2kvm(tmp_path / "bin", "exit 1")

    with pytest.raises(ConversionError):
        export_vm(
            ExportOptions(vm_path=APP01, output_dir=out, convert=True, hyper2kvm_path=broken, overwrite=True),
            target_of(vsphere),
        )

    assert {name: (out / name).read_bytes() for name in files_under(out)} == before


@pytest.mark.vsphere
def test_an_overwrite_that_succeeds_replaces_the_previous_export(vsphere, app01_seeds, tmp_path):
    out = tmp_path / "out"
    export_vm(ExportOptions(vm_path=APP01, output_dir=out), target_of(vsphere))
    result = export_vm(
        ExportOptions(vm_path=APP01, output_dir=out, format="ova", overwrite=True), target_of(vsphere)
    )
    assert files_under(out) == ["app01.ova"]
    assert result.artifacts == ["app01.ova"]


def test_an_overwrite_leaves_nothing_of_a_converted_previous_export(vsphere, app01_seeds, tmp_path):
    out = tmp_path / "out"
    export_vm(ExportOptions(vm_path=APP01, output_dir=out, format="ova", convert=True), target_of(vsphere))
    assert (out / "manifest.json").is_file() and (out / "converted").is_dir()
    export_vm(ExportOptions(vm_path=APP01, output_dir=out, format="ova", overwrite=True), target_of(vsphere))
    # No manifest pointing at disks that are gone, no converted images of the old export.
    assert files_under(out) == ["app01.ova"]


class ExportAgainOnPhase(NullReporter):
    """At ``phase``, a second export (a direct hyperexport, say) into ``second``: its outcome kept."""

    def __init__(self, phase: str, second: Path, target: VCenterTarget) -> None:
        self.phase, self.second, self.target = phase, second, target
        self.outcome: BaseException | None = None

    def progress(self, snapshot: ProgressSnapshot) -> None:
        if snapshot.phase == self.phase and self.outcome is None:
            try:
                export_vm(ExportOptions(vm_path=APP01, output_dir=self.second), self.target)
            except ExportError as exc:
                self.outcome = exc
            else:
                self.outcome = AssertionError("the second export was not refused")


@pytest.mark.vsphere
@pytest.mark.parametrize("second", ["out", "out/inner", "."], ids=["same", "inside", "around"])
def test_a_live_run_refuses_another_export_into_its_directory_whoever_starts_it(
    vsphere, app01_seeds, tmp_path, second
):
    out = tmp_path / "out"
    reporter = ExportAgainOnPhase("packaging", tmp_path / second, target_of(vsphere))
    export_vm(ExportOptions(vm_path=APP01, output_dir=out), target_of(vsphere), reporter)
    assert isinstance(reporter.outcome, OutputError), reporter.outcome
    assert "is in use by another export" in str(reporter.outcome)
    assert files_under(out) == ["app01-disk1.vmdk", "app01-disk2.vmdk", "app01.mf", "app01.ovf"]
    # Once the first run ended, its directory is free again (its lock went with it).
    export_vm(ExportOptions(vm_path=APP01, output_dir=out / "inner"), target_of(vsphere))


class CorruptOnPhase(NullReporter):
    """At the start of ``phase``, overwrites the start of a downloaded disk (a bad disk, say)."""

    def __init__(self, phase: str, disk: Path) -> None:
        self.phase, self.disk = phase, disk

    def progress(self, snapshot: ProgressSnapshot) -> None:
        if snapshot.phase == self.phase:
            with open(self.disk, "r+b") as handle:
                handle.write(b"corrupt")


@pytest.mark.vsphere
def test_a_failed_verification_leaves_nothing_of_the_run(vsphere, app01_seeds, tmp_path):
    out = tmp_path / "out"
    reporter = CorruptOnPhase("verifying", out / "app01-disk1.vmdk")
    with pytest.raises(VerificationError, match="checksum mismatch for app01-disk1.vmdk"):
        export_vm(ExportOptions(vm_path=APP01, output_dir=out, verify=True), target_of(vsphere), reporter)
    assert not out.exists()


def test_an_output_path_through_a_symlink_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    run = OutputDir(tmp_path / "link" / "out", "r1")
    with pytest.raises(OutputError, match=f"{tmp_path / 'link'} is a symlink: refused"):
        run.prepare(completed_marker_names=[], overwrite=False)
    assert files_under(tmp_path / "real") == []


class SwapOnPhase(NullReporter):
    """Holds the export at the start of ``phase`` while it swaps the output directory for a
    symlink to ``elsewhere``: the pipeline thread itself runs the swap, so no timing is involved."""

    def __init__(self, phase: str, output: Path, elsewhere: Path) -> None:
        self.phase, self.output, self.elsewhere = phase, output, elsewhere
        self.swapped = False

    def progress(self, snapshot: ProgressSnapshot) -> None:
        if snapshot.phase == self.phase and not self.swapped:
            os.rename(self.output, self.output.with_name("moved-away"))
            os.symlink(self.elsewhere, self.output)
            self.swapped = True


@pytest.mark.vsphere
@pytest.mark.parametrize("phase", ["waiting for export lease", "packaging", "converting"])
def test_a_directory_swapped_for_a_symlink_mid_run_receives_nothing(vsphere, app01_seeds, tmp_path, phase):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    reporter = SwapOnPhase(phase, out, elsewhere)
    options = ExportOptions(vm_path=APP01, output_dir=out, convert=phase == "converting")

    with pytest.raises(OutputError, match="was moved or replaced during the export"):
        export_vm(options, target_of(vsphere), reporter)

    assert reporter.swapped
    assert files_under(elsewhere) == []
    assert files_under(tmp_path / "moved-away") == []  # the run's own files went with the failure


# ---- a completed job whose files were removed says so ---------------------------------------


def completed_job(output: Path) -> Job:
    output.mkdir()
    for name in ("app01.ovf", "app01-disk1.vmdk"):
        (output / name).write_text(name)
    result = {
        "output_dir": str(output),
        "package": str(output / "app01.ovf"),
        "files": [{"name": "app01-disk1.vmdk", "size": 15, "sha256": "a" * 64}],
        "artifacts": ["app01-disk1.vmdk", "app01.ovf"],
    }
    return make_job(APP01, str(output), status="completed", result=result)


def test_a_completed_job_whose_files_were_removed_reads_files_missing(
    operator_api, export_root, client, django_user_model
):
    job = completed_job(export_root / "app01")
    assert operator_api.get(f"/jobs/{job.id}").json()["status_detail"] == ""

    (export_root / "app01" / "app01-disk1.vmdk").unlink()

    body = operator_api.get(f"/jobs/{job.id}").json()
    assert (body["status"], body["status_detail"]) == ("completed", "files missing")
    assert body["missing_files"] == [str(export_root / "app01" / "app01-disk1.vmdk")]
    listed = operator_api.get("/jobs/query", {"status": "completed"}).json()
    assert listed["results"][0]["status_detail"] == "files missing"

    rendered = JobSerializer(job).data
    assert "Status:   completed (files missing)" in job_detail(rendered)
    assert job_table([rendered])[1].split()[1:4] == ["completed", "(files", "missing)"]

    user = django_user_model.objects.create_user("viewer", password="viewer-pass")
    grant_role(user, "operator")
    client.force_login(user)
    page = client.get(f"/ui/jobs/{job.id}/").content.decode()
    assert "files missing" in page and "Files missing" in page


def test_schedule_retention_keeps_a_run_directory_holding_another_jobs_export(
    operator_api, export_root, redis_url
):
    from schedules.models import Schedule

    created = operator_api.post(
        "/schedules",
        {"name": "nightly", "cron": "0 2 * * *", "vm_path": APP01, "output_path": str(export_root)},
        format="json",
    ).json()
    operator_api.patch(f"/schedules/{created['id']}", {"retention": 1, "overlap": "allow"}, format="json")
    old = fire_at(created["id"], datetime(2026, 6, 1, 2, tzinfo=UTC)).job
    Job.objects.filter(id=old.id).update(status="completed")
    os.makedirs(old.output_path)
    theirs = completed_job(Path(old.output_path) / "theirs")  # another job exported inside it later
    new = fire_at(created["id"], datetime(2026, 6, 2, 2, tzinfo=UTC)).job
    Job.objects.filter(id=new.id).update(status="completed")

    run_retention.apply_retention(Schedule.objects.get(id=created["id"]))

    assert files_under(Path(theirs.output_path)) == ["app01-disk1.vmdk", "app01.ovf"]


@pytest.mark.vsphere
@pytest.mark.django_db(transaction=True)
def test_a_workers_output_swapped_for_a_symlink_mid_download_receives_nothing(
    celery_worker, slow_vsphere, export_root
):
    from tests.conftest import register_vcenter
    from tests.test_hyperctl import frozen

    sim, _ = slow_vsphere
    register_vcenter(sim, "slow")
    output, elsewhere = export_root / "db01", export_root / "elsewhere"
    elsewhere.mkdir()
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/db01", "output_path": str(output), "vcenter": "slow"}]
    ).job_ids[0]
    wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")
    with frozen(celery_worker):  # held mid-download while the path is swapped
        os.rename(output, export_root / "moved-away")
        os.symlink(elsewhere, output)

    job = wait_for(lambda: Job.objects.get(id=job_id) if Job.objects.get(id=job_id).is_finished else None)

    assert (job.status, job.error) == (
        "failed",
        f"output directory {output} was moved or replaced during the export",
    )
    assert files_under(elsewhere) == []
    assert files_under(export_root / "moved-away") == []


def test_a_removed_converted_image_reads_files_missing(operator_api, export_root):
    job = completed_job(export_root / "app01")
    converted = export_root / "app01" / "converted" / "app01-disk1.qcow2"
    converted.parent.mkdir()
    converted.write_text("qcow2")
    job.result = {
        **job.result,
        "artifacts": [*job.result["artifacts"], "converted"],
        "conversion": {"outputs": [{"disk_id": "d1", "output": str(converted), "format": "qcow2"}]},
    }
    job.save()
    assert operator_api.get(f"/jobs/{job.id}").json()["status_detail"] == ""
    converted.unlink()  # the directory stays: only the image the operator takes to KVM is gone
    body = operator_api.get(f"/jobs/{job.id}").json()
    assert (body["status_detail"], body["missing_files"]) == ("files missing", [str(converted)])
