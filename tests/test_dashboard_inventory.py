"""The Inventory page, a VM's details, the VM-path suggestions and the converter's preflight panel,
with Django's test client against the vSphere simulator: who may see what, bad parameters,
unknown VMs, and VM names (which anyone who may create a VM chooses) shown harmlessly."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest
from django.template.loader import render_to_string

from exports.models import Job, VCenter
from inventory.records import DiskRecord, DriveRecord, NicRecord, VMPage, VMRecord
from tests import factories
from tests.test_dashboard_views import HTMX, converter_form

pytestmark = pytest.mark.django_db

PROD = ("/dc/vm/prod/web01", "/dc/vm/prod/web02", "/dc/vm/prod/app01", "/dc/vm/prod/db01")
DEV_APP01 = "/dc/vm/dev/app01"

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
BIDI = "invoice\u202egpj.exe"  # shows as "invoiceexe.jpg" unless isolated
LONG = "vm-" + "x" * 200
SLASHED = "web/01"  # vCenter's path escapes it: web%2f01


def record(name: str = "web01", path: str | None = None, **fields) -> VMRecord:
    """A VM as the inventory lists it (plain data: the templates' input)."""
    values = {
        "moref": "vm-42",
        "name": name,
        "path": path or f"/dc/vm/prod/{name}",
        "datacenter": "dc",
        "folder": "/dc/vm/prod",
        "power_state": "on",
        "guest_id": "ubuntu64Guest",
        "guest_full_name": "Ubuntu Linux (64-bit)",
        "guest_detected": "",
        "cpus": 2,
        "cores_per_socket": 1,
        "memory_mb": 4096,
        "firmware": "efi",
        "secure_boot": True,
        "template": False,
        "encrypted": False,
        "cbt_enabled": True,
        "tools_status": "running",
        "snapshot_count": 1,
        "current_snapshot": "before-upgrade",
        "estimated_export_bytes": 3 << 30,
        "disks": (
            DiskRecord(
                label="Hard disk 1",
                capacity_bytes=16 << 30,
                provisioning="thin",
                controller="pvscsi",
                bus="scsi",
                bus_number=0,
                unit_number=0,
                datastore="LocalDS_0",
                datastore_accessible=True,
                mode="persistent",
                rdm=None,
                file_name=f"[LocalDS_0] {name}/{name}.vmdk",
            ),
            DiskRecord(
                label="Hard disk 2",
                capacity_bytes=1 << 30,
                provisioning="thick-eager",
                controller="lsilogic",
                bus="scsi",
                bus_number=1,
                unit_number=3,
                datastore="SAN_1",
                datastore_accessible=False,
                mode="independent_persistent",
                rdm="physical",
                file_name=f"[SAN_1] {name}/{name}_1.vmdk",
            ),
        ),
        "nics": (NicRecord("Network adapter 1", "VM Network", "00:50:56:aa:bb:cc", "vmxnet3"),),
        "drives": (DriveRecord("CD/DVD drive 1", "cdrom", "[LocalDS_0] iso/ubuntu.iso", True, True),),
    }
    values.update(fields)
    return VMRecord(**values)


@pytest.fixture
def no_role_browser(no_role_user):
    return factories.browser(no_role_user)


# ---- without vCenter: the page's own rules ----------------------------------------------------


def test_the_navigation_has_an_inventory_tab(viewer_browser):
    page = viewer_browser.get("/ui/jobs/").content.decode()
    assert '<a href="/ui/inventory/"' in page and ">Inventory</a>" in page


@pytest.mark.parametrize(
    "path",
    ["/ui/inventory/", "/ui/inventory/vm/?ref=/dc/vm/prod/web01", "/ui/inventory/suggest/?vm_path=web"],
)
def test_an_account_without_a_role_sees_no_inventory(no_role_browser, path):
    assert no_role_browser.get(path).status_code == 403


def test_logged_out_the_inventory_is_the_log_in_page(client):
    response = client.get("/ui/inventory/?q=web")
    assert response.status_code == 302 and response["Location"].startswith("/ui/login/?next=")


@pytest.mark.parametrize(
    "query",
    [
        {"power_state": "sideways"},
        {"page": "0"},
        {"page": "two"},
        {"vcenter": "no-such-vcenter"},
        {"q": "w" * 2000},
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(viewer_browser, query):
    response = viewer_browser.get("/ui/inventory/", query)
    assert response.status_code == 400
    assert 'class="field-error"' in response.content.decode()


@pytest.mark.parametrize("query", [{}, {"ref": ""}, {"ref": "   "}, {"ref": "x" * 2000}])
def test_a_vm_page_without_a_usable_ref_is_a_400(viewer_browser, query):
    response = viewer_browser.get("/ui/inventory/vm/", query)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()


def test_nothing_typed_suggests_nothing(operator_browser):
    response = operator_browser.get("/ui/inventory/suggest/", {"vm_path": "  "}, **HTMX)
    assert response.status_code == 200 and 'role="option"' not in response.content.decode()


def test_a_typed_text_too_long_for_a_path_is_a_400(operator_browser):
    response = operator_browser.get("/ui/inventory/suggest/", {"vm_path": "w" * 2000}, **HTMX)
    assert response.status_code == 400 and "not a VM path" in response.content.decode()


def test_the_preflight_panel_is_not_for_viewers(viewer_browser):
    assert viewer_browser.post("/ui/converter/preflight/", converter_form()).status_code == 403


def test_the_preflight_panel_asks_for_a_vm_first(operator_browser):
    response = operator_browser.post("/ui/converter/preflight/", converter_form(vm_path=""), **HTMX)
    assert response.status_code == 200 and "Choose a VM" in response.content.decode()


def test_the_preflight_panel_shows_the_forms_errors_not_a_500(operator_browser):
    response = operator_browser.post(
        "/ui/converter/preflight/", converter_form(conversion_timeout="forever"), **HTMX
    )
    assert response.status_code == 200 and "conversion_timeout" in response.content.decode()


# ---- the converter and the schedule form: the typeahead field, the prefill -----------------------


@pytest.mark.parametrize("path", ["/ui/converter/", "/ui/schedules/new/"])
def test_the_vm_path_is_an_aria_combobox_asking_for_suggestions(operator_browser, path):
    page = operator_browser.get(path).content.decode()
    field = re.search(r'<input [^>]*name="vm_path"[^>]*>', page).group(0)
    assert 'role="combobox"' in field and 'aria-expanded="false"' in field
    assert 'aria-controls="id_vm_path-listbox"' in field and 'aria-autocomplete="list"' in field
    assert 'hx-get="/ui/inventory/suggest/"' in field and "delay:250ms" in field
    assert '<ul id="id_vm_path-listbox" class="listbox" role="listbox"' in page


def test_export_opens_the_converter_with_the_path_and_vcenter_filled_in(operator_browser):
    VCenter.objects.create(name="lab", url="https://vc.lab.example/sdk", username="svc")
    page = operator_browser.get("/ui/converter/", {"vm_path": "/dc/vm/prod/web%2f01", "vcenter": "lab"})
    text = page.content.decode()
    assert 'value="/dc/vm/prod/web%2f01"' in text
    assert re.search(r'<option value="lab" selected>lab</option>', text)


def test_a_hostile_prefill_is_escaped(operator_browser):
    text = operator_browser.get("/ui/converter/", {"vm_path": f"/dc/vm/prod/{XSS}"}).content.decode()
    assert XSS not in text and html.escape(XSS, quote=True) in text


def test_the_converter_submits_the_vcenter_chosen(operator_browser, export_root):
    VCenter.objects.create(name="lab", url="https://vc.lab.example/sdk", username="svc")
    form = converter_form(vcenter="lab", output_dir=str(export_root / "web01"))
    response = operator_browser.post("/ui/converter/", form)
    assert response.status_code == 302
    assert Job.objects.get().vcenter.name == "lab"


# ---- VM names from vCenter, rendered -------------------------------------------------------------


def table(vms: list[VMRecord], *, can_operate: bool = True) -> str:
    page = VMPage(
        vcenter="", count=len(vms), page=1, page_size=50, cached_at="2026-12-07T14:00:00+00:00", results=vms
    )
    return render_to_string(
        "dashboard/partials/inventory_table.html",
        {"vm_page": page, "vms": vms, "pages": 1, "can_operate": can_operate, "vcenter": "", "query": ""},
    )


@pytest.mark.parametrize("name", [XSS, BIDI, LONG])
def test_a_vm_name_is_escaped_and_isolated_in_the_table(name):
    text = table([record(name)])
    assert name not in text if name == XSS else True
    assert f"<bdi>{html.escape(name)}</bdi>" in text
    # Its link and Export… carry the path URL-encoded: no quote or angle bracket gets through.
    for url in re.findall(r'href="([^"]*)"', text):
        assert "<" not in url and '"' not in url and " " not in url


def test_a_slash_in_a_name_stays_escaped_in_the_links():
    text = table([record(SLASHED, path="/dc/vm/prod/web%2f01")])
    # %2f is sent as %252f: the server reads back %2f, the escaped slash, not a folder.
    assert f"?ref={quote('/dc/vm/prod/web%2f01', safe='')}" in text
    assert f"?vm_path={quote('/dc/vm/prod/web%2f01', safe='')}" in text


def test_a_viewer_gets_no_export_button():
    assert "Export…" in table([record()], can_operate=True)
    assert "Export…" not in table([record()], can_operate=False)


def test_suggestions_escape_names_and_carry_the_path():
    text = render_to_string(
        "dashboard/partials/vm_suggestions.html", {"vms": [record(XSS)], "count": 1, "text": "scr"}
    )
    assert XSS not in text and 'role="option"' in text
    assert f'data-value="{html.escape("/dc/vm/prod/" + XSS, quote=True)}"' in text
