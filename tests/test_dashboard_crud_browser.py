"""The Schedules and Webhooks pages in a real browser (chromium via Playwright → daphne): create
and edit a schedule watching the cron preview follow the typing, add a webhook and see its secret once,
redeliver a delivery, and delete both after confirming."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from schedules.models import Schedule
from tests.test_dashboard_browser import browser, logged_in, page, server  # noqa: F401 - fixtures
from webhooks.models import Webhook, WebhookDelivery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vsphere]

# Never resolvable (RFC 6761): the URL is accepted, and nothing is ever sent there.
HOOK_URL = "https://hooks.example.invalid/hypersdk"


def console_errors(tab: Page) -> list[str]:
    """The tab's console errors from now on (htmx reports its misconfigurations there), less
    the browser's note on each 422 a refused preview or form answers with, which is expected."""
    errors: list[str] = []
    tab.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "status of 422" not in message.text
            else None
        ),
    )
    return errors


def test_a_schedule_is_created_and_edited_with_the_cron_previewed_as_it_is_typed_then_deleted(
    logged_in: Page,  # noqa: F811 - the fixture
    export_root,
):
    tab = logged_in
    errors = console_errors(tab)
    tab.get_by_role("link", name="Schedules").click()
    tab.get_by_role("link", name="New schedule").click()
    expect(tab.get_by_role("heading", name="New schedule")).to_be_visible()
    tab.get_by_label("Name").fill("nightly web01")
    tab.get_by_label("Time zone").fill("Europe/Berlin")
    preview = tab.locator("[data-cron-preview]")
    cron = tab.get_by_label("Cron", exact=True)

    cron.press_sequentially("0 25")  # half typed: the one-line reason, no runs
    expect(preview.locator(".field-error")).to_contain_text("invalid cron")
    expect(preview.locator("time")).to_have_count(0)
    cron.fill("")
    cron.press_sequentially("30 2 * * 1-5")
    expect(preview).to_contain_text("At 02:30 AM, Monday through Friday")
    runs = preview.locator("ol.next-runs time")
    expect(runs).to_have_count(5)
    for run in runs.all_inner_texts():  # on Berlin's wall clock, weekdays only
        assert re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d 02:30 \+0[12]00", run), run

    tab.get_by_label("VM Path").fill("/dc/vm/prod/web01")
    tab.get_by_label("Output Directory").fill(str(export_root / "nightly"))
    tab.get_by_label("Auto-convert").check()
    tab.get_by_role("button", name="Create schedule").click()

    expect(tab).to_have_url(re.compile(r"/ui/schedules/$"))
    expect(tab.get_by_role("status")).to_contain_text("Created schedule nightly web01.")
    schedule = Schedule.objects.get(name="nightly web01")
    assert (schedule.cron, schedule.timezone) == ("30 2 * * 1-5", "Europe/Berlin")
    assert schedule.job_template["convert"] is True
    row = tab.locator(f"#schedule-{schedule.id}")
    expect(row).to_contain_text("At 02:30 AM, Monday through Friday")

    # Edit: the preview of the saved expression is there on load, and follows the change.
    row.get_by_role("link", name="Edit").click()
    expect(tab.get_by_role("heading", name="Edit schedule nightly web01")).to_be_visible()
    expect(preview.locator("ol.next-runs time")).to_have_count(5)
    cron.fill("0 4 * * *")
    expect(preview).to_contain_text("At 04:00 AM")
    tab.get_by_role("button", name="Save schedule").click()
    expect(tab.get_by_role("status")).to_contain_text("Saved schedule nightly web01.")
    expect(row).to_contain_text("0 4 * * *")
    assert Schedule.objects.get(id=schedule.id).cron == "0 4 * * *"

    dialogs: list[str] = []
    tab.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name="Delete nightly web01").click()
    expect(row).to_have_count(0)
    assert dialogs and dialogs[0].startswith("Delete the schedule nightly web01?")
    assert not Schedule.objects.exists()
    assert errors == []


def test_a_webhook_is_added_with_its_secret_shown_once_redelivered_and_deleted(
    logged_in: Page,  # noqa: F811 - the fixture
):
    tab = logged_in
    errors = console_errors(tab)
    tab.get_by_role("link", name="Webhooks").click()
    tab.get_by_label("URL").fill(HOOK_URL)
    tab.get_by_label("job.completed").check()
    tab.get_by_label("job.failed").check()
    tab.get_by_role("button", name="Add webhook").click()

    secret = tab.locator("[data-webhook-secret]")
    expect(secret).to_have_text(re.compile(r"^whsec_"))
    webhook = Webhook.objects.get()
    assert secret.inner_text() == webhook.secret and webhook.events == ["job.completed", "job.failed"]
    row = tab.locator(f"#webhook-{webhook.id}")
    expect(row).to_contain_text("standard")
    expect(row).to_contain_text("job.completed, job.failed")
    expect(row.locator('[data-field="last-delivery"]')).to_have_text("none yet")
    tab.reload()
    expect(tab.locator(f"#webhook-{webhook.id}")).to_be_visible()
    expect(tab.locator("[data-webhook-secret]")).to_have_count(0)
    assert webhook.secret not in tab.content()

    # A delivery that failed (as the worker would have recorded it), sent again from its list.
    failed = WebhookDelivery.objects.create(
        webhook=webhook, event="job.completed", body='{"event": "job.completed"}', status="failed", attempts=4
    )
    tab.locator(f"#webhook-{webhook.id}").get_by_role("link", name="Deliveries").click()
    expect(tab.get_by_role("heading", name="Deliveries of webhook 0")).to_be_visible()
    tab.get_by_role("button", name=f"Redeliver {failed.id}").click()
    again = tab.get_by_role("row").filter(has_text=f"redelivery of {failed.id}")
    expect(again).to_have_count(1)
    expect(tab.get_by_role("status")).to_contain_text(f"of {failed.id} queued")
    assert WebhookDelivery.objects.filter(redelivery_of=failed).count() == 1

    tab.get_by_role("link", name="‹ Webhooks").click()
    expect(tab.locator(f"#webhook-{webhook.id} [data-field='last-delivery']")).to_contain_text("pending")
    tab.once("dialog", lambda dialog: dialog.accept())
    tab.get_by_role("button", name="Delete webhook 0").click()
    expect(tab.locator(f"#webhook-{webhook.id}")).to_have_count(0)
    expect(tab.get_by_role("status").filter(has_text="Deleted webhook")).to_have_count(1)
    assert not Webhook.objects.exists()
    assert errors == []
