"""In Chromium: the dashboard's numbers follow the jobs as they start and end, the log box follows
its tail, sizes read as the CLI prints them, and the converter speaks of its own controls."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from exports import job_queue, lifecycle
from exports.models import Job
from hypersdk.lib.units import human_size
from tests import test_dashboard_browser as shared
from tests.browser.harness import outside_the_event_loop
from tests.conftest import APP01
from tests.factories import make_job

# The browser tests' fixtures: a daphne server, Chromium, a logged-in operator's tab.
server, browser, page, logged_in = shared.server, shared.browser, shared.page, shared.logged_in
EXPORT_WAIT_MS = shared.EXPORT_WAIT_MS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vsphere]


def websocket_open(page: Page, key: str) -> None:
    page.wait_for_function(f"() => window.hyperLive.streams()['{key}']?.open === true")


def start(*started: Job) -> None:
    """The jobs move to running as a worker's claim moves them (and says so on /ws/jobs/)."""
    for job in started:
        assert outside_the_event_loop(job_queue.claim_job, job.id, "test-worker") is not None


def finish(job: Job, status: str, **outcome) -> None:
    outside_the_event_loop(job_queue.finish_job, job.id, status, **outcome)


def write_log(job: Job, line: str) -> None:
    outside_the_event_loop(lifecycle.append_log, job.id, line)


def counted(page: Page, status: str) -> Locator:
    """The jobs-by-state table's all-time count of ``status``: it comes in the same response as
    the Daemon card's running count, and no websocket message changes it in between."""
    return page.locator(f"table.counts tr:has(.badge-{status}) td").nth(1)


def test_the_daemon_card_s_running_count_follows_jobs_starting_and_ending(logged_in: Page, export_root):
    page = logged_in
    running = page.locator("#daemon-running [data-field=running]")
    expect(running).to_have_text("0")
    websocket_open(page, "jobs")
    first, second = (make_job(f"/dc/vm/prod/{name}", str(export_root / name)) for name in ("a01", "b01"))

    start(first, second)  # at once: the second change arrives while the first refresh is in flight
    expect(counted(page, "running")).to_have_text("2")
    # The card's count came with the table: read it without waiting.
    assert running.inner_text() == "2"
    expect(page.locator("#overview-jobs [data-job-stream]")).to_have_count(2)

    finish(first, Job.Status.COMPLETED)
    expect(counted(page, "completed")).to_have_text("1")
    assert running.inner_text() == "1"
    finish(second, Job.Status.FAILED, error="disk full")
    expect(counted(page, "failed")).to_have_text("1")
    assert running.inner_text() == "0"
    expect(page.get_by_text("No job is running or waiting.")).to_be_visible()


AT_TAIL = "log => log.scrollTop + log.clientHeight >= log.scrollHeight - 4"


def test_the_log_box_follows_its_tail_unless_the_reader_scrolled_up(logged_in: Page, export_root):
    page = logged_in
    job = make_job(APP01, str(export_root / "app01"))
    start(job)
    for number in range(60):  # more than the box shows, one a long unbroken path
        lifecycle.append_log(
            job.id, f"line {number}: wrote {'/very/long/path' * (40 if number == 30 else 1)}"
        )
    page.goto(f"/ui/jobs/{job.id}/")
    log = page.locator(f'[data-job-logs="{job.id}"]')
    websocket_open(page, f"job:{job.id}")
    page.wait_for_function(f"() => ({AT_TAIL})(document.querySelector('[data-job-logs]'))")
    # A long line wraps inside the box: nothing scrolls sideways.
    assert log.evaluate("log => log.scrollWidth <= log.clientWidth")

    write_log(job, "line 60: the tail")
    expect(log.locator("li").last).to_contain_text("line 60: the tail")
    assert log.evaluate(AT_TAIL)

    log.hover()
    page.mouse.wheel(0, -5000)  # the reader scrolls up to read
    expect(log).to_have_attribute("data-follows", "reader")
    kept = log.evaluate("log => log.scrollTop")
    write_log(job, "line 61: while reading")
    expect(log.locator("li").last).to_contain_text("line 61: while reading")
    assert log.evaluate("log => log.scrollTop") == kept

    log.evaluate("log => log.lastElementChild.scrollIntoView()")  # back at the end: follows again
    expect(log).to_have_attribute("data-follows", "tail")
    write_log(job, "line 62: following again")
    expect(log.locator("li").last).to_contain_text("line 62")
    assert log.evaluate(AT_TAIL)


def test_live_sizes_read_as_the_cli_prints_them(logged_in: Page):
    sizes = [0, 1, 1023, 1024, 1280, 1536, 2411724, 38174720, 5 << 30, 1 << 40, 3 << 50]
    shown = logged_in.evaluate("sizes => sizes.map(window.hyperLive.formatBytes)", sizes)
    assert shown == [human_size(size) for size in sizes]


def test_the_hyper2kvm_hint_follows_the_path_as_it_is_typed(logged_in: Page):
    page = logged_in
    page.get_by_role("link", name="📦 Manifest Converter").click()
    hint = page.locator("#converter-help")
    expect(hint).to_contain_text("Detected on this server:")  # the daemon's own environment's
    detected = hint.locator("code").first.inner_text()
    field = page.get_by_label("Hyper2KVM Binary Path")

    field.press_sequentially("/usr/bin/env")
    expect(hint).to_contain_text("/usr/bin/env will be refused: not a configured converter")
    field.fill(detected)
    expect(hint).to_contain_text(f"A job will run {detected}.")
    field.fill("")
    expect(hint).to_contain_text(f"Detected on this server: {detected}.")


def convert(page: Page, output: str, *, overwrite: bool = False) -> str:
    """Start an OVA export of app01 from the converter; the job's id once it has finished."""
    page.goto("/ui/converter/")
    page.get_by_label("VM Path").fill(APP01)
    page.get_by_label("Output Directory").fill(output)
    page.get_by_label("Auto-convert").uncheck()
    page.get_by_label("Verify").uncheck()
    page.get_by_label("Compress").check()
    if overwrite:
        page.get_by_label("Overwrite").check()
    page.get_by_role("button", name="🚀 Start Export & Conversion").click()
    panel = page.locator("[data-job-stream]")
    expect(panel).to_have_attribute("data-status", re.compile("completed|failed"), timeout=EXPORT_WAIT_MS)
    return panel.get_attribute("data-job-stream")


def test_the_converter_says_tick_overwrite_and_the_tick_replaces_the_export(
    logged_in: Page, celery_worker, app01_seeds, export_root
):
    page = logged_in
    output = str(export_root / "app01")
    first = convert(page, output)
    assert Job.objects.get(id=first).status == "completed"

    refused = convert(page, output)
    error = page.locator("[data-job-stream] [data-field=error]")
    expect(error).to_have_text(
        f'{output} already holds a completed export (app01.ova): tick "Overwrite" to replace it'
    )
    assert "-overwrite" not in page.locator("main").inner_text()
    assert Job.objects.get(id=refused).status == "failed"

    replaced = convert(page, output, overwrite=True)
    assert Job.objects.get(id=replaced).status == "completed"
    page.goto(f"/ui/jobs/{replaced}/")
    # Every file in the directory, each once: the OVA, the disks the manifest describes, the manifest.
    listed = page.locator("table.files code.path").all_inner_texts()
    assert sorted(listed) == sorted(path.name for path in Path(output).iterdir())
    assert "app01.ova" in listed and "manifest.json" in listed
