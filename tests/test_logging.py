"""Structured logs: every line a worker writes while it runs a job carries the job's id, in the
plain format (``job_id=<id>``) and as JSON lines (HYPERSDK_LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging
import re
import threading

import pytest

from exports import jobs
from exports.models import Job, JobLog
from hypersdk.lib.log_context import NO_JOB, JobIdFilter, JsonFormatter, job_context
from tests.conftest import APP01, WorkerProcess, wait_for

PLAIN_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) job_id=(\S+): (.*)$")


def finished(job_id: str) -> Job | None:
    job = Job.objects.get(id=job_id)
    return job if job.is_finished else None


def ended(log_file, job_id: str) -> bool:
    """Whether the worker logged the end of the job's own task (plain or JSON lines)."""
    return any(" succeeded in " in line and job_id in line for line in log_file.read_text().splitlines())


def run_on_worker(worker_environment, log_file, export_root, **env: str) -> tuple[str, list[str]]:
    """One export on a fresh worker; the job id and the messages the worker logged for it."""
    worker = WorkerProcess(worker_environment | env, log_file, name=f"log-{log_file.stem}").start()
    try:
        # With a manifest and a qemu-img conversion, so the pipeline has steps to report.
        spec = {"vm_path": APP01, "output_path": str(export_root / "app01"), "convert": True}
        job_id = jobs.submit_jobs([spec]).job_ids[0]
        job = wait_for(lambda: finished(job_id), message="the export to finish")
        assert job.status == "completed", job.error
        # The row says completed a moment before the worker is done with the task: let it end.
        # Its own task's line: another test's task left in this process's queue may end first.
        wait_for(lambda: ended(log_file, job_id), message="the task to end")
    finally:
        worker.stop()
    # What the pipeline reported while running (JobLog rows the worker wrote, not the service's).
    messages = [
        m
        for m in JobLog.objects.filter(job_id=job_id).values_list("message", flat=True)
        if not m.startswith(("submitted", "started on")) and m != "completed"
    ]
    assert len(messages) >= 3, messages
    return job_id, messages


@pytest.mark.vsphere
@pytest.mark.django_db(transaction=True)
def test_every_worker_line_about_a_job_carries_its_id(worker_environment, app01_seeds, export_root, tmp_path):
    log_file = tmp_path / "plain.log"
    job_id, messages = run_on_worker(worker_environment, log_file, export_root)
    lines = [PLAIN_LINE.match(line) for line in log_file.read_text().splitlines()]
    records = [m.groups() for m in lines if m]
    assert any(name.startswith("celery") for _, name, _, _ in records), "celery logs through our format"

    stamped = [(name, message) for _, name, jid, message in records if jid == job_id]
    # Each step the pipeline reported is a worker log line with the job id ...
    for message in messages:
        assert ("exports.job_runner", message) in stamped, message
    # ... and so is every other line that names the job (lifecycle events, the outcome).
    for _, name, jid, message in records:
        if job_id in message:
            assert jid == job_id, (name, message)
    assert ("hypersdk.lib.events", f"event job.started {job_id}") in stamped
    assert ("hypersdk.lib.events", f"event job.completed {job_id}") in stamped
    # Celery's own line about the task's end; only its "received" line (the main process, before
    # the task starts) has no job id: it names the Celery task id that this line ties to the job.
    assert any(name == "celery.app.trace" and "succeeded" in message for name, message in stamped)
    # Lines that are not about a job say so.
    assert any(jid == NO_JOB for _, _, jid, _ in records)


@pytest.mark.vsphere
@pytest.mark.django_db(transaction=True)
def test_json_log_lines_carry_the_job_id(worker_environment, app01_seeds, export_root, tmp_path):
    log_file = tmp_path / "json.log"
    job_id, messages = run_on_worker(worker_environment, log_file, export_root, HYPERSDK_LOG_FORMAT="json")
    entries = []
    for line in log_file.read_text().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    assert entries and {"time", "level", "logger", "job_id", "message"} <= set(entries[0])
    mine = [(e["logger"], e["message"]) for e in entries if e["job_id"] == job_id]
    for message in messages:
        assert ("exports.job_runner", message) in mine, message
    for entry in entries:
        if job_id in entry["message"]:
            assert entry["job_id"] == job_id, entry


# ---- the filter itself -----------------------------------------------------------------------


def stamp(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    JobIdFilter().filter(record)
    return record


def in_thread(function):
    box = []
    thread = threading.Thread(target=lambda: box.append(function()))
    thread.start()
    thread.join()
    return box[0]


def test_threads_of_the_one_running_job_are_stamped_too():
    assert stamp("idle").job_id == NO_JOB
    with job_context("job-a"):
        assert stamp("main").job_id == "job-a"
        # A download thread does not inherit the context variable; the process runs one job.
        assert in_thread(lambda: stamp("download").job_id) == "job-a"
    assert stamp("after").job_id == NO_JOB


def test_two_jobs_in_one_process_never_stamp_a_thread_with_the_wrong_one():
    with job_context("job-a"):
        inner = threading.Event()
        done = threading.Event()
        seen = {}

        def other_job():
            with job_context("job-b"):
                seen["own"] = stamp("b").job_id
                inner.set()
                done.wait(5)

        thread = threading.Thread(target=other_job)
        thread.start()
        inner.wait(5)
        assert stamp("a").job_id == "job-a"  # its own context wins
        assert in_thread(lambda: stamp("orphan").job_id) == NO_JOB  # ambiguous: no guess
        done.set()
        thread.join()
    assert seen["own"] == "job-b"


def test_an_explicit_job_id_wins_and_json_lines_are_json():
    record = stamp("hello %s", job_id="job-x")
    record.args = ("world",)
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["job_id"], entry["message"], entry["level"]) == ("job-x", "hello world", "info")
    assert json.loads(JsonFormatter().format(stamp("none")))["job_id"] is None
