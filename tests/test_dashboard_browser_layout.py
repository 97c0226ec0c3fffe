"""In Chromium: every page fits a 1024 px screen and a phone's 390 px without scrolling sideways,
the favicon answers, and the screenshots the docs embed are taken from the real pages."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from exports import job_queue, lifecycle
from exports.models import Job
from tests import test_dashboard_browser as shared
from tests.browser.harness import horizontal_overflow, outside_the_event_loop, screenshot
from tests.conftest import APP01
from tests.factories import make_job, make_schedule
from tests.test_dashboard_numbers import ova_export
from webhooks import service as webhooks
from webhooks.models import Webhook, WebhookDelivery

# The browser tests' fixtures: a daphne server, Chromium, a logged-in operator's tab.
server, browser, page, logged_in = shared.server, shared.browser, shared.page, shared.logged_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vsphere]

LONG = "web-frontend-" + "x" * 60  # a VM name with no place to break a line


@pytest.fixture
def jobs_to_show(export_root) -> dict[str, Job]:
    """A running job with a log, a completed OVA export with its files, a failed one: long names."""
    running = make_job(f"/dc/vm/prod/{LONG}", str(export_root / f"{LONG}-running"))
    assert outside_the_event_loop(job_queue.claim_job, running.id, "worker-1@exports-01") is not None
    Job.objects.filter(id=running.id).update(
        phase="downloading", percent=41.5, bytes_done=3 << 29, bytes_total=(7 << 30) // 2,
        current_file=f"{LONG}-disk1.vmdk",
    )  # fmt: skip
    for line in (
        f"connected to vCenter; exporting /dc/vm/prod/{LONG}",
        f"disk 1 of 2: {LONG}-disk1.vmdk, 3.5 GiB to read",
        f"writing {export_root}/{LONG}-running/{LONG}-disk1.vmdk.part",
    ):
        outside_the_event_loop(lifecycle.append_log, running.id, line)
    done = make_job(
        APP01,
        str(export_root / "app01"),
        status=Job.Status.COMPLETED,
        result=ova_export(export_root / "app01"),
    )
    failed = make_job(
        "/dc/vm/prod/db01",
        str(export_root / "db01"),
        status=Job.Status.FAILED,
        error=f'{export_root}/db01 already holds a completed export (db01.ova): tick "Overwrite" to replace it',
    )
    return {"running": running, "completed": done, "failed": failed}


@pytest.fixture
def webhook_to_show(settings) -> Webhook:
    """A webhook with a long URL and a delivery that failed with a long error; a schedule of a
    VM with a long name."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    make_schedule(f"nightly-{LONG}", "0 0 13 * 5", job_template={"vm_path": f"/dc/vm/prod/{LONG}"})
    webhook, _ = webhooks.add_webhook(f"http://127.0.0.1:9/hooks/{LONG}?token={LONG}")
    WebhookDelivery.objects.create(
        webhook=webhook,
        event="job.failed",
        job_id="job-" + "f" * 28,
        body="{}",
        status=WebhookDelivery.Status.FAILED,
        attempts=3,
        error=f"cannot connect to http://127.0.0.1:9/hooks/{LONG}: connection refused",
    )
    return webhook


def pages(jobs: dict[str, Job], webhook: Webhook) -> dict[str, str]:
    return {
        "dashboard": "/",
        "jobs": "/ui/jobs/",
        "running job": f"/ui/jobs/{jobs['running'].id}/",
        "completed job": f"/ui/jobs/{jobs['completed'].id}/",
        "converter": "/ui/converter/",
        "inventory": "/ui/inventory/",
        "vm": "/ui/inventory/vm/?ref=/dc/vm/prod/web01",
        "schedules": "/ui/schedules/",
        "webhooks": "/ui/webhooks/",
        "deliveries": f"/ui/webhooks/{webhook.id}/deliveries/",
    }


def settled(page: Page, path: str) -> None:
    page.goto(path)
    if path == "/":  # the Daemon card comes after the page
        expect(page.locator("#daemon-running")).to_be_visible()


@pytest.mark.parametrize("width", [1024, 390])
def test_no_page_scrolls_sideways(logged_in: Page, jobs_to_show, webhook_to_show, width):
    page = logged_in
    page.set_viewport_size({"width": width, "height": 800})
    overflowing = {}
    for name, path in pages(jobs_to_show, webhook_to_show).items():
        settled(page, path)
        found = horizontal_overflow(page)
        if found:
            overflowing[name] = found
    assert overflowing == {}


def test_every_page_has_a_favicon(logged_in: Page):
    page = logged_in
    missing: list[str] = []
    page.on("response", lambda response: response.status >= 400 and missing.append(response.url))
    response = page.request.get("/favicon.ico")
    assert response.ok and response.headers["content-type"] == "image/x-icon"
    page.goto("/ui/jobs/")
    assert page.locator("link[rel=icon]").get_attribute("href") == "/favicon.ico"
    assert missing == []


@pytest.fixture
def a_day_of_exports() -> Job:
    """What the docs show: web01 exporting now, two exports done today, one refused; the running job."""
    GiB = 1 << 30
    running = make_job("/dc/vm/prod/web01", "/exports/web01")
    assert outside_the_event_loop(job_queue.claim_job, running.id, "worker-1@exports-01") is not None
    Job.objects.filter(id=running.id).update(
        phase="downloading", percent=35.5, bytes_done=int(14.2 * GiB), bytes_total=40 * GiB,
        current_file="web01-disk1.vmdk",
    )  # fmt: skip
    for line in (
        "connected to vcenter.example.com as svc-export",
        "disk 1 of 2: web01-disk1.vmdk (scsi0:0), 32.0 GiB capacity, 30.1 GiB to read",
        "disk 2 of 2: web01-disk2.vmdk (scsi0:1), 8.0 GiB capacity, 7.9 GiB to read",
        "downloading web01-disk1.vmdk from https://esx-03.example.com/nfc/52a1.../disk-0.vmdk",
    ):
        outside_the_event_loop(lifecycle.append_log, running.id, line)
    for vm in ("db01", "app01"):
        make_job(f"/dc/vm/prod/{vm}", f"/exports/{vm}", status=Job.Status.COMPLETED)
    make_job(
        "/dc/vm/prod/mail01",
        "/exports/mail01",
        status=Job.Status.FAILED,
        error="VM /dc/vm/prod/mail01 is powered on: shut it down first",
    )
    return running


def test_the_docs_screenshots_are_taken_from_the_pages(logged_in: Page, a_day_of_exports):
    page = logged_in
    page.emulate_media(color_scheme="light")
    settled(page, "/")
    screenshot(page, "dashboard")
    settled(page, f"/ui/jobs/{a_day_of_exports.id}/")
    screenshot(page, "job-running")
    page.goto("/ui/converter/")
    page.get_by_label("Output Directory").fill("/exports/web01")
    page.get_by_label("Auto-convert").check()
    page.get_by_label("Verify").check()
    # The typeahead as an operator meets it (the simulator's VMs): a few letters, the list open,
    # ArrowDown on the first; the preflight panel is below the fold at this size.
    field = page.get_by_role("combobox", name="VM Path")
    field.click()
    field.press_sequentially("web0")
    expect(page.get_by_role("listbox").get_by_role("option")).to_have_count(2)
    field.press("ArrowDown")
    expect(field).to_have_attribute("aria-activedescendant", "id_vm_path-listbox-0")
    screenshot(page, "converter")


def test_the_inventory_screenshot_is_taken_from_the_page(logged_in: Page):
    page = logged_in
    page.emulate_media(color_scheme="light")
    page.goto("/ui/inventory/")
    expect(page.locator("#inventory-table tbody tr").first).to_be_visible()
    screenshot(page, "inventory")
