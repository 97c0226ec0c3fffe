"""The Inventory page and the VM-path typeahead in Chromium (Playwright → daphne → the vSphere
simulator, the daemon's default vCenter): the table lists the simulator's VMs and narrows as
you type, Export… opens the converter filled in, three letters + ArrowDown + Enter choose a VM,
the preflight panel warns of a powered-on VM before Start, and the converter's "Write libvirt
domain" box follows Auto-convert and the target, by keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from exports.models import Job
from tests import test_dashboard_browser as shared
from tests import test_dashboard_inventory as views
from tests.browser.harness import horizontal_overflow
from tests.test_dashboard_crud_browser import console_errors

server, browser, page, logged_in = shared.server, shared.browser, shared.page, shared.logged_in
hostile_vsphere = views.hostile_vsphere  # a simulator whose VM names are an attacker's

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vsphere]

PROD = ["/dc/vm/prod/app01", "/dc/vm/prod/db01", "/dc/vm/prod/web01", "/dc/vm/prod/web02"]


@pytest.fixture(autouse=True)
def no_console_errors(logged_in: Page):
    """htmx reports a misconfigured attribute (a selector matching nothing) in the console."""
    errors = console_errors(logged_in)
    yield
    assert errors == []


def listed(page: Page):
    return page.locator("#inventory-table tbody code.path")


def test_the_inventory_lists_the_vms_and_search_narrows_them(logged_in: Page):
    page = logged_in
    page.get_by_role("link", name="Inventory", exact=True).click()
    expect(page.get_by_role("heading", name="Inventory")).to_be_visible()
    expect(listed(page)).to_have_text(["/dc/vm/dev/app01", *PROD])
    expect(page.locator("#inventory-table")).to_contain_text("cached at")
    page.evaluate("window.sameDocument = true")

    page.get_by_label("Search").press_sequentially("web")
    expect(listed(page)).to_have_text(["/dc/vm/prod/web01", "/dc/vm/prod/web02"])
    expect(page).to_have_url(re.compile(r"/ui/inventory/\?q=web"))
    page.get_by_label("Power").select_option("off")
    expect(page.locator("#inventory-table")).to_contain_text(re.compile(r"No VM matches|VMs?"))
    assert page.evaluate("window.sameDocument") is True  # htmx swapped the table, no reload


def test_refresh_posts_the_filters_typed_and_shows_them_again(logged_in: Page):
    page = logged_in
    page.goto("/ui/inventory/")
    page.get_by_label("Search").press_sequentially("db")
    expect(listed(page)).to_have_text(["/dc/vm/prod/db01"])
    with page.expect_request(lambda request: request.method == "POST") as posted:
        page.get_by_role("button", name="Refresh").click()
    assert "/ui/inventory/?q=db&" in posted.value.url  # the filters typed since the page loaded
    expect(page).to_have_url(re.compile(r"/ui/inventory/\?q=db&"))
    expect(listed(page)).to_have_text(["/dc/vm/prod/db01"])
    expect(page.get_by_label("Search")).to_have_value("db")


def test_export_opens_the_converter_with_the_vm_filled_in(logged_in: Page):
    page = logged_in
    page.goto("/ui/inventory/?q=db01")
    page.get_by_role("link", name="Export db01…").click()
    expect(page.get_by_role("heading", name="📦 Manifest Converter")).to_be_visible()
    expect(page.get_by_role("combobox", name="VM Path")).to_have_value("/dc/vm/prod/db01")


def test_a_vms_details_page_opens_from_its_row(logged_in: Page):
    page = logged_in
    page.goto("/ui/inventory/?q=web01")
    page.locator("#inventory-table").get_by_role("link", name="web01", exact=True).click()
    expect(page.get_by_role("heading", name="VM web01")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"^Disks \(\d+\)$"))).to_be_visible()


def choose_with_the_keyboard(page: Page, typed: str, downs: int) -> None:
    field = page.get_by_role("combobox", name="VM Path")
    field.click()
    field.press_sequentially(typed)
    listbox = page.get_by_role("listbox")
    expect(listbox.get_by_role("option").first).to_be_visible()
    expect(field).to_have_attribute("aria-expanded", "true")
    for _ in range(downs):
        field.press("ArrowDown")
    active = field.get_attribute("aria-activedescendant")
    assert active and page.locator(f"#{active}").get_attribute("aria-selected") == "true"
    field.press("Enter")


def test_three_letters_arrow_down_and_enter_choose_a_vm_in_the_converter(logged_in: Page):
    page = logged_in
    page.goto("/ui/converter/")
    choose_with_the_keyboard(page, "db0", downs=1)
    field = page.get_by_role("combobox", name="VM Path")
    expect(field).to_have_value("/dc/vm/prod/db01")
    expect(field).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("listbox")).to_be_hidden()
    assert Job.objects.count() == 0  # Enter chose; it did not submit the form


def test_escape_closes_the_suggestions_and_arrow_up_wraps(logged_in: Page):
    page = logged_in
    page.goto("/ui/converter/")
    field = page.get_by_role("combobox", name="VM Path")
    field.click()
    field.press_sequentially("app")
    expect(page.get_by_role("listbox").get_by_role("option")).to_have_count(2)
    field.press("Escape")
    expect(page.get_by_role("listbox")).to_be_hidden()
    expect(field).to_have_attribute("aria-expanded", "false")
    field.press("ArrowUp")  # reopens on the last option
    expect(field).to_have_attribute("aria-expanded", "true")
    field.press("Enter")
    expect(field).to_have_value("/dc/vm/prod/app01")


def test_the_schedule_form_chooses_a_vm_the_same_way(logged_in: Page):
    page = logged_in
    page.goto("/ui/schedules/new/")
    choose_with_the_keyboard(page, "web", downs=2)
    expect(page.get_by_role("combobox", name="VM Path")).to_have_value("/dc/vm/prod/web02")


FORMS = ["/ui/converter/", "/ui/schedules/new/"]


@pytest.mark.parametrize("path", FORMS)
def test_a_key_typed_after_the_list_came_never_picks_from_that_list(logged_in: Page, path):
    page = logged_in
    held: list = []  # the answer for "web02", kept back until the keys below are pressed
    page.route(re.compile(r"/ui/inventory/suggest/\?vm_path=web02(&|$)"), lambda route: held.append(route))
    page.goto(path)
    field = page.get_by_role("combobox", name="VM Path")
    field.click()
    field.press_sequentially("web0")
    options = page.get_by_role("listbox").get_by_role("option")
    expect(options).to_have_count(2)  # web01, web02
    field.press("2")
    field.press("ArrowDown")
    field.press("Enter")
    # "web0"'s list went with the keystroke: nothing to move to, nothing picked, nothing sent.
    expect(field).to_have_value("web02")
    expect(field).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#id_vm_path-listbox > *")).to_have_count(0)
    while not held:  # the debounced question for "web02" goes out
        page.wait_for_timeout(50)
    held[0].continue_()
    expect(options).to_have_count(1)
    expect(options).to_have_attribute("data-value", "/dc/vm/prod/web02")
    expect(field).to_have_attribute("aria-expanded", "true")
    field.press("ArrowDown")
    field.press("Enter")
    expect(field).to_have_value("/dc/vm/prod/web02")
    expect(field).to_have_attribute("aria-expanded", "false")
    assert Job.objects.count() == 0


@pytest.mark.parametrize("path", FORMS)
def test_no_match_is_said_beside_the_field_not_in_the_listbox(logged_in: Page, path):
    page = logged_in
    page.goto(path)
    field = page.get_by_role("combobox", name="VM Path")
    field.click()
    field.press_sequentially("zzz")
    expect(page.locator("#id_vm_path-status")).to_have_text("No VM matches “zzz”.")
    expect(page.get_by_role("status").filter(has_text="No VM matches")).to_have_count(1)
    expect(field).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("listbox")).to_be_hidden()
    expect(page.locator("#id_vm_path-listbox > *")).to_have_count(0)  # options only, and none
    field.press("Backspace")
    field.press_sequentially("b")  # "zzb": the status line follows the text
    expect(page.locator("#id_vm_path-status")).to_have_text("No VM matches “zzb”.")


def test_a_vcenter_deleted_since_the_form_opened_is_said_beside_the_field(logged_in: Page):
    from exports.models import VCenter

    VCenter.objects.create(name="lab", url="https://vc.lab.example/sdk", username="svc")
    page = logged_in
    page.goto("/ui/converter/")
    page.get_by_label("vCenter").select_option("lab")
    VCenter.objects.filter(name="lab").delete()
    field = page.get_by_role("combobox", name="VM Path")
    field.click()
    field.press_sequentially("web")
    expect(page.locator("#id_vm_path-status")).to_have_text(re.compile(r"^no vCenter named 'lab'"))
    expect(field).to_have_attribute("aria-expanded", "false")


@pytest.fixture
def powered_on(vsphere) -> str:
    """web02, running for the test, then as it was (the session's simulator is shared)."""
    vm = "/dc/vm/prod/web02"
    was_on = vsphere.find_vm(vm).runtime.powerState == "poweredOn"
    vsphere.power_on(vm)
    yield vm
    if not was_on:
        vsphere.power_off(vm)


def test_the_preflight_panel_shows_a_blocker_for_a_powered_on_vm(logged_in: Page, powered_on, export_root):
    page = logged_in
    page.goto("/ui/converter/")
    panel = page.locator("#preflight-result")
    expect(panel).to_contain_text("Choose a VM")
    page.get_by_label("Output Directory").fill(str(export_root / "out"))
    choose_with_the_keyboard(page, "web02", downs=1)
    expect(page.get_by_role("combobox", name="VM Path")).to_have_value(powered_on)
    blocker = panel.locator('.finding-blocker[data-code="powered-on"]')
    expect(blocker).to_be_visible()
    expect(panel.get_by_role("alert")).to_contain_text("This export would fail")
    expect(page.get_by_role("button", name="🚀 Start Export & Conversion")).to_be_enabled()


@pytest.mark.parametrize("width", [1024, 390])
def test_hostile_names_neither_run_nor_widen_the_page(logged_in: Page, hostile_vsphere, width):
    from tests.conftest import register_vcenter

    XSS, BIDI, LONG = views.XSS, views.BIDI, views.LONG
    register_vcenter(hostile_vsphere, "hostile")
    page = logged_in
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_viewport_size({"width": width, "height": 800})
    page.goto("/ui/inventory/?vcenter=hostile")
    table = page.locator("#inventory-table")
    expect(table.get_by_role("link", name=XSS, exact=True)).to_be_visible()  # shown as text
    expect(table.get_by_role("link", name=BIDI, exact=True)).to_be_visible()
    assert horizontal_overflow(page) == []
    table.get_by_role("link", name=LONG, exact=True).click()
    expect(page.get_by_role("heading", name=f"VM {LONG}")).to_be_visible()
    assert horizontal_overflow(page) == []
    assert dialogs == [] and page.locator("img[src=x]").count() == 0


# ---- the converter's libvirt domain box ------------------------------------------------------


def test_the_domain_box_follows_auto_convert_and_the_target_by_keyboard(logged_in: Page, export_root):
    tab = logged_in
    tab.goto("/ui/converter/")
    auto_convert = tab.get_by_role("checkbox", name="Auto-convert")
    domain = tab.get_by_role("checkbox", name="Write libvirt domain")
    qcow2 = tab.get_by_role("radio", name="QCOW2", exact=False)
    sata = tab.get_by_role("radio", name="sata")
    network_map = tab.get_by_label("Network map")

    # Ticked for the default target, but not asked for while Auto-convert is off.
    expect(domain).to_be_checked()
    expect(domain).to_be_disabled()
    expect(sata).to_be_disabled()
    expect(network_map).to_be_disabled()

    auto_convert.focus()
    tab.keyboard.press("Space")
    expect(domain).to_be_enabled()
    expect(domain).to_be_checked()
    expect(sata).to_be_enabled()
    expect(network_map).to_be_enabled()

    qcow2.focus()
    tab.keyboard.press("ArrowDown")  # raw
    expect(domain).to_be_checked()
    tab.keyboard.press("ArrowDown")  # vdi: VirtualBox's, no domain by default
    expect(domain).not_to_be_checked()
    expect(sata).to_be_disabled()
    tab.keyboard.press("ArrowUp")  # raw again
    expect(domain).to_be_checked()

    # Set by hand, it stays as set whatever the target.
    domain.focus()
    tab.keyboard.press("Space")
    expect(domain).not_to_be_checked()
    qcow2.focus()
    tab.keyboard.press("Space")
    expect(qcow2).to_be_checked()
    expect(domain).not_to_be_checked()
    domain.focus()
    tab.keyboard.press("Space")

    # Auto-convert off again: the box and its fields are disabled, and what is typed in them
    # is not sent.
    network_map.fill("VM Network=default")
    auto_convert.focus()
    tab.keyboard.press("Space")
    expect(domain).to_be_disabled()
    expect(network_map).to_be_disabled()
    tab.get_by_label("VM Path").fill("/dc/vm/prod/web01")
    tab.get_by_label("Output Directory").fill(str(export_root / "web01"))
    tab.get_by_role("button", name="Start Export").press("Enter")
    expect(tab.get_by_role("heading", name="Export & conversion")).to_be_visible()
    options = Job.objects.get().options
    assert (options["convert"], options["libvirt"], options["network_map"]) == (False, False, "")
