"""The dashboard end to end in a real browser: chromium (Playwright) → daphne → Redis → a Celery
worker → the vSphere simulator. Live updates must arrive over the websocket, without a reload."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from exports import jobs
from exports.models import Job
from hypersdk.lib.permissions import grant_role
from tests.browser.harness import DaphneServer, launch_chromium
from tests.conftest import APP01, register_vcenter, wait_for
from tests.test_hyperctl import frozen

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vsphere]

# Generous: these wait for real exports, never measure them.
EXPORT_WAIT_MS = 180_000


@pytest.fixture(scope="module")
def server(worker_environment, tmp_path_factory):
    daphne = DaphneServer(worker_environment, tmp_path_factory.mktemp("daphne") / "daphne.log").start()
    yield daphne
    daphne.stop()


@pytest.fixture(scope="module")
def browser(worker_environment):
    """Playwright's sync API runs an event loop in this thread, so Django would refuse the
    tests' ORM calls; they stay synchronous, so allow them (after the subprocesses' environment
    was taken: worker_environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = launch_chromium(playwright)
            yield chromium
            chromium.close()


@pytest.fixture
def page(request, browser, server, tmp_path):
    """A fresh browser tab; on failure a screenshot and the page's console go to tmp_path."""
    context = browser.new_context(base_url=server.url)
    tab = context.new_page()
    console: list[str] = []
    tab.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    failed_before = request.session.testsfailed
    yield tab
    if request.session.testsfailed > failed_before:
        shot = tmp_path / f"{request.node.name[:80]}.png"
        tab.screenshot(path=str(shot), full_page=True)
        (tmp_path / "console.log").write_text("\n".join(console))
        (tmp_path / "daphne.log").write_text(server.log()[-20000:])
        print(f"browser test failed: screenshot {shot}, console and daphne log beside it")
    context.close()


@pytest.fixture
def logged_in(page: Page, django_user_model) -> Page:
    grant_role(django_user_model.objects.create_user("operator", password="operator-pass"), "operator")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/login/\?next=/$"))
    page.get_by_label("User name").fill("operator")
    page.get_by_label("Password").fill("operator-pass")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


def received(page: Page, job_id: str) -> dict[str, int]:
    return page.evaluate(f"window.hyperLive.streams()['job:{job_id}'].received")


def test_the_manifest_converter_exports_and_streams_progress_and_logs_live(
    logged_in: Page, celery_worker, app01_seeds, export_root
):
    page = logged_in
    page.get_by_role("link", name="📦 Manifest Converter").click()
    expect(page.get_by_role("heading", name="📦 Manifest Converter")).to_be_visible()
    page.get_by_label("VM Path").fill(APP01)
    page.get_by_label("Output Directory").fill(str(export_root / "app01"))
    page.get_by_label("QCOW2 (Recommended)").check()
    page.get_by_label("Auto-convert").check()
    page.get_by_label("Verify").check()
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page

    page.get_by_role("button", name="🚀 Start Export & Conversion").click()

    panel = page.locator("[data-job-stream]")
    expect(panel).to_be_visible()
    job_id = panel.get_attribute("data-job-stream")
    job = Job.objects.get(id=job_id)
    assert job.origin == "dashboard" and job.options["convert"] and job.options["manifest_target"] == "qcow2"
    expect(page).to_have_url(re.compile(rf"/ui/converter/\?job={job_id}"))
    expect(panel.locator('[data-field="status"]')).to_have_text("completed", timeout=EXPORT_WAIT_MS)
    expect(panel.locator('[data-field="percent"]')).to_have_text("100.0%")
    assert panel.locator("progress").evaluate("bar => bar.value") == 100
    log = panel.locator("[data-job-logs] li")
    expect(log.filter(has_text="Artifact Manifest written to")).to_have_count(1)
    expect(log.filter(has_text=re.compile("^.*completed$"))).to_have_count(1)
    # It all came over the websocket, into the same document.
    assert page.evaluate("window.sameDocument") is True
    messages = received(page, job_id)
    assert messages.get("job.snapshot", 0) >= 1 and messages.get("job.status", 0) >= 1
    assert messages.get("job.progress", 0) >= 1 and messages.get("job.log", 0) >= 1

    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.get_by_role("row").filter(has_text=job_id)
    expect(row).to_contain_text("completed")
    expect(row).to_contain_text("dashboard")
    row.get_by_role("link", name=job_id).click()
    expect(page.get_by_role("heading", name="Artifact Manifest")).to_be_visible()
    expect(page.locator("pre.json").first).to_contain_text('"vm_name": "app01"')
    expect(page.get_by_text(re.compile(r"Converted by .* to qcow2"))).to_be_visible()
    # The conversion's table names the file; the libvirt domain's table holds its whole path too.
    expect(page.get_by_role("cell", name="converted/app01-disk1.qcow2", exact=True)).to_be_visible()


@contextmanager
def held_mid_transfer(worker, job_id: str) -> Iterator[None]:
    """The worker stopped (SIGSTOP) once the job has reported moving bytes twice: the first
    report was then published too (a report is written, then published), and the job stays
    running however long the browser takes."""
    wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")
    first = Job.objects.get(id=job_id).bytes_done
    wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=first).exists(), message="more bytes")
    with frozen(worker):
        assert Job.objects.get(id=job_id).status == "running"
        yield


def test_a_running_job_is_cancelled_from_its_page(logged_in: Page, celery_worker, slow_vsphere, export_root):
    page = logged_in
    sim, _ = slow_vsphere
    register_vcenter(sim, "slow")
    output = export_root / "db01"
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/db01", "output_path": str(output), "vcenter": "slow"}], origin="dashboard"
    ).job_ids[0]

    with held_mid_transfer(celery_worker, job_id):  # still running when Cancel is clicked
        page.goto(f"/ui/jobs/{job_id}/")
        panel = page.locator(f'[data-job-stream="{job_id}"]')
        expect(panel.locator('[data-field="status"]')).to_have_text("running", timeout=EXPORT_WAIT_MS)
        expect(panel.locator('[data-field="transfer"]')).to_contain_text(" of ", timeout=EXPORT_WAIT_MS)
        page.evaluate("window.sameDocument = true")

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Cancel job").click()
        wait_for(lambda: Job.objects.filter(id=job_id, cancel_requested=True).exists(), message="the request")

    expect(panel.locator('[data-field="status"]')).to_have_text("cancelled", timeout=EXPORT_WAIT_MS)
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    expect(panel.locator("[data-job-logs] li").filter(has_text="cancel requested")).to_have_count(1)
    assert page.evaluate("window.sameDocument") is True
    assert received(page, job_id).get("job.status", 0) >= 1
    assert Job.objects.get(id=job_id).status == "cancelled" and not output.exists()


def test_the_dashboard_tab_shows_a_running_job_live(
    logged_in: Page, celery_worker, slow_vsphere, export_root
):
    page = logged_in
    sim, _ = slow_vsphere
    register_vcenter(sim, "slow")
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/db01", "output_path": str(export_root / "db01"), "vcenter": "slow"}]
    ).job_ids[0]
    # The dashboard learns of the new job from /ws/jobs/ and then follows its progress.
    with held_mid_transfer(celery_worker, job_id):  # still running when it is cancelled
        panel = page.locator(f'[data-job-stream="{job_id}"]')
        expect(panel.locator('[data-field="status"]')).to_have_text("running", timeout=EXPORT_WAIT_MS)
        expect(panel.locator('[data-field="transfer"]')).to_contain_text(" of ", timeout=EXPORT_WAIT_MS)
        jobs.cancel_job(job_id)
    expect(page.locator(f'[data-job-stream="{job_id}"]')).to_have_count(0, timeout=EXPORT_WAIT_MS)
    expect(page.get_by_role("row", name=re.compile(r"cancelled"))).to_contain_text("1")
