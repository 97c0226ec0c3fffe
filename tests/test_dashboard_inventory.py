"""The Inventory page, a VM's details, the VM-path suggestions and the converter's preflight panel,
with Django's test client against the vSphere simulator: who may see what, bad parameters,
unknown VMs, and VM names (which anyone who may create a VM chooses) shown harmlessly."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.template.loader import render_to_string

from exports.models import Job, VCenter
from inventory.records import DiskRecord, DriveRecord, NicRecord, VMPage, VMRecord
from tests import factories
from tests.test_dashboard_views import HTMX, converter_form

pytestmark = pytest.mark.django_db

PROD = ("/dc/vm/prod/web01", "/dc/vm/prod/web02", "/dc/vm/prod/app01", "/dc/vm/prod/db01")
DEV_APP01 = "/dc/vm/dev/app01"

XSS = '<img src=x onerror=alert("x")><b onclick=alert(1)>'  # no "/": a name's "/" reads %2f
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
    if name == XSS:
        assert name not in text
    assert f"<bdi>{html.escape(name)}</bdi>" in text
    # Its link and Export… carry the path URL-encoded: no quote or angle bracket gets through.
    for url in re.findall(r'href="([^"]*)"', text):
        assert "<" not in url and '"' not in url and " " not in url


def test_a_slash_in_a_name_stays_escaped_in_the_links():
    text = table([record(SLASHED, path="/dc/vm/prod/web%2f01")])
    # %2f is sent as %252f: the server reads back %2f, the escaped slash, not a folder.
    assert f"?ref={quote('/dc/vm/prod/web%2f01', safe='')}" in text
    assert f"?vm_path={quote('/dc/vm/prod/web%2f01', safe='')}" in text


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "bell\x07"])
def test_a_path_the_job_spec_refuses_gets_the_reason_not_an_export_button(name):
    text = table([record(name)])
    assert "Export…</a>" not in text and "/ui/converter/" not in text
    assert "No Export…: the VM's path must not hold control characters" in text
    detail = render_to_string(
        "dashboard/inventory_vm.html", {"vm": record(name), "vcenter": "", "can_operate": True}
    )
    assert "Export…</a>" not in detail and "must not hold control characters" in detail


def test_a_viewer_gets_no_export_button():
    assert "Export…" in table([record()], can_operate=True)
    assert "Export…" not in table([record()], can_operate=False)


@pytest.mark.parametrize(
    ("record_class", "name"),
    [(VMRecord, "vm"), (DiskRecord, "disk"), (NicRecord, "nic"), (DriveRecord, "drive")],
)
def test_a_vms_page_shows_every_field_the_inventory_holds(record_class, name):
    # A field added to the records (they may grow) but not to the page fails here.
    from dataclasses import fields

    source = Path(settings.BASE_DIR, "templates/dashboard/inventory_vm.html").read_text()
    listed_elsewhere = {"disks", "nics", "drives"}  # the page's tables
    missing = [
        f.name
        for f in fields(record_class)
        if f.name not in listed_elsewhere and f"{name}.{f.name}" not in source
    ]
    assert missing == []


def test_a_vms_page_renders_a_record_with_every_device():
    text = render_to_string(
        "dashboard/inventory_vm.html", {"vm": record(BIDI), "vcenter": "", "can_operate": False}
    )
    assert f"<bdi>{BIDI}</bdi>" in text and "left out by export" in text and "inaccessible" in text
    assert "independent_persistent" in text and "physical" in text and "00:50:56:aa:bb:cc" in text
    assert "[LocalDS_0] iso/ubuntu.iso" in text and "before-upgrade" in text and "Export…" not in text


def test_a_vms_page_says_when_vcenter_cannot_read_the_vm():
    context = {"vcenter": "", "can_operate": False}
    text = render_to_string(
        "dashboard/inventory_vm.html", {"vm": record(connection_state="orphaned"), **context}
    )
    assert "orphaned</span>: its configuration cannot be read" in text
    text = render_to_string("dashboard/inventory_vm.html", {"vm": record(), **context})
    assert "its configuration cannot be read" not in text


def test_suggestions_escape_names_and_carry_the_path():
    text = render_to_string(
        "dashboard/partials/vm_suggestions.html", {"vms": [record(XSS)], "count": 1, "text": "scr"}
    )
    assert XSS not in text and 'role="option"' in text
    assert f'data-value="{html.escape("/dc/vm/prod/" + XSS, quote=True)}"' in text


# ---- against the simulator (the daemon's default vCenter: GOVC_*) -------------------------------


def rows(page: str) -> list[str]:
    """The VM paths the table lists, in order."""
    return [
        html.unescape(p) for p in re.findall(r'<td><code class="path"><bdi>([^<]*)</bdi></code></td>', page)
    ]


def test_the_inventory_lists_the_simulators_vms(viewer_browser, govc_env):
    response = viewer_browser.get("/ui/inventory/")
    assert response.status_code == 200
    page = response.content.decode()
    assert set(rows(page)) >= {*PROD, DEV_APP01}
    assert "cached at <time datetime=" in page


def test_typing_narrows_the_table_and_answers_only_the_table(viewer_browser, govc_env):
    response = viewer_browser.get("/ui/inventory/", {"q": "web"}, **HTMX)
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page and 'id="inventory-table"' in page
    assert rows(page) == ["/dc/vm/prod/web01", "/dc/vm/prod/web02"]
    assert response["HX-Push-Url"] == "/ui/inventory/?q=web"


def test_the_folder_filter_keeps_the_vms_in_it(viewer_browser, govc_env):
    page = viewer_browser.get("/ui/inventory/", {"folder": "/dc/vm/dev"}).content.decode()
    assert rows(page) == [DEV_APP01]


@pytest.fixture
def list_reads(monkeypatch) -> list[int]:
    """Each read of a vCenter's VM list from now on (one PropertyCollector retrieval each)."""
    from inventory import cache, service

    cache.clear()
    reads: list[int] = []
    index_vms = service.index_vms

    def counted(si):
        reads.append(1)
        return index_vms(si)

    monkeypatch.setattr(service, "index_vms", counted)
    monkeypatch.setattr(service, "REFRESH_SHARED_SECONDS", 0)  # each refresh here reads
    yield reads
    cache.clear()


def test_refresh_is_a_post_that_reads_vcenter_again_and_shows_the_filters(
    viewer_browser, govc_env, list_reads
):
    page = viewer_browser.get("/ui/inventory/", {"q": "db"}).content.decode()
    assert len(list_reads) == 1
    assert '<form id="inventory-refresh" method="post" action="/ui/inventory/?q=db"' in page
    assert 'form="inventory-refresh"' in page and "csrfmiddlewaretoken" in page
    response = viewer_browser.post("/ui/inventory/?q=db&page=1")
    assert response.status_code == 303 and response["Location"] == "/ui/inventory/?q=db&page=1"
    assert len(list_reads) == 2  # a viewer may refresh: it only reads


def test_a_get_never_reads_vcenter_again(viewer_browser, govc_env, list_reads):
    # A link (or an <img> on another site) must not make a viewer's browser re-read vCenter.
    viewer_browser.get("/ui/inventory/", {"q": "db"})
    response = viewer_browser.get("/ui/inventory/", {"q": "db", "refresh": "1"}, **HTMX)
    assert response.status_code == 200 and rows(response.content.decode()) == ["/dc/vm/prod/db01"]
    assert response["HX-Push-Url"] == "/ui/inventory/?q=db" and len(list_reads) == 1


def test_refresh_without_the_csrf_token_is_refused(viewer, govc_env, list_reads):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    assert client.post("/ui/inventory/").status_code == 403 and list_reads == []
    page = client.get("/ui/inventory/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post("/ui/inventory/", {"csrfmiddlewaretoken": token}).status_code == 303
    assert len(list_reads) == 2


def test_a_viewer_reads_the_inventory_but_gets_no_export_button(viewer_browser, govc_env):
    page = viewer_browser.get("/ui/inventory/").content.decode()
    assert rows(page) and "Export…" not in page


def test_an_operators_export_link_opens_the_converter_with_the_path(operator_browser, govc_env):
    page = operator_browser.get("/ui/inventory/", {"q": "db01"}).content.decode()
    link = html.unescape(re.search(r'<a class="button" href="([^"]*)"', page).group(1))
    assert link == f"/ui/converter/?vm_path={quote('/dc/vm/prod/db01', safe='')}"
    converter = operator_browser.get(link).content.decode()
    assert 'value="/dc/vm/prod/db01"' in converter


def test_a_vms_page_shows_its_disks_nics_and_facts(viewer_browser, govc_env):
    response = viewer_browser.get("/ui/inventory/vm/", {"ref": "/dc/vm/prod/web01"})
    assert response.status_code == 200
    page = response.content.decode()
    for heading in ("Summary", "Disks (", "Network adapters (", "CD-ROM and floppy drives ("):
        assert heading in page
    assert "<bdi>web01</bdi>" in page and "Change block tracking" in page and "Estimated export size" in page


def test_an_unknown_vm_is_a_404(viewer_browser, govc_env):
    response = viewer_browser.get("/ui/inventory/vm/", {"ref": "/dc/vm/prod/no-such-vm"})
    assert response.status_code == 404


def test_an_unknown_vcenter_on_a_vms_page_is_a_404(viewer_browser, govc_env):
    response = viewer_browser.get("/ui/inventory/vm/", {"ref": "/dc/vm/prod/web01", "vcenter": "nope"})
    assert response.status_code == 404


def test_suggestions_are_options_of_the_matching_vms(operator_browser, govc_env):
    response = operator_browser.get("/ui/inventory/suggest/", {"vm_path": "app"}, **HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert sorted(re.findall(r'role="option" aria-selected="false" data-value="([^"]*)"', page)) == sorted(
        [DEV_APP01, "/dc/vm/prod/app01"]
    )


@pytest.fixture
def powered_on(vsphere) -> str:
    """web02, running for the test, then as it was (the session's simulator is shared)."""
    vm = "/dc/vm/prod/web02"
    was_on = vsphere.find_vm(vm).runtime.powerState == "poweredOn"
    vsphere.power_on(vm)
    yield vm
    if not was_on:
        vsphere.power_off(vm)


def test_the_preflight_panel_shows_a_blocker_for_a_powered_on_vm(
    operator_browser, govc_env, powered_on, export_root
):
    vm = powered_on
    response = operator_browser.post(
        "/ui/converter/preflight/", converter_form(vm_path=vm, output_dir=str(export_root / "x")), **HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200 and 'role="alert"' in page
    assert re.search(r'class="finding finding-blocker" data-code="powered-on"', page)


def test_the_preflight_panel_says_an_unknown_vm_is_a_blocker(operator_browser, govc_env, export_root):
    form = converter_form(vm_path="/dc/vm/prod/no-such-vm", output_dir=str(export_root / "x"))
    page = operator_browser.post("/ui/converter/preflight/", form, **HTMX).content.decode()
    assert 'data-code="vm-not-found"' in page


# ---- hostile names, from a vCenter of their own --------------------------------------------------


@pytest.fixture(scope="module")
def hostile_vsphere(tmp_path_factory):
    """A simulator whose VMs bear the names an attacker who may create a VM would choose."""
    from pyVim.task import WaitForTask

    from tests.conftest import start_simulator

    sim = start_simulator(tmp_path_factory.mktemp("hostile"))
    for n, name in enumerate((XSS, BIDI, LONG, SLASHED)):
        # Named after creation: the simulator's datastore files would take the name as a path.
        vm = sim.find_vm(sim.create_vm("/dc/vm/prod", f"hostile{n}", []))
        WaitForTask(vm.Rename_Task(name), si=sim._si())
    yield sim
    sim.stop()


@pytest.fixture
def hostile(hostile_vsphere) -> str:
    from tests.conftest import register_vcenter

    register_vcenter(hostile_vsphere, "hostile")
    return "hostile"


def test_hostile_names_are_escaped_on_every_inventory_page(operator_browser, hostile):
    page = operator_browser.get("/ui/inventory/", {"vcenter": hostile, "q": "prod"}).content.decode()
    assert XSS not in page and f"<bdi>{html.escape(XSS)}</bdi>" in page
    assert f"<bdi>{BIDI}</bdi>" in page and f"<bdi>{LONG}</bdi>" in page
    # Another vCenter than the daemon's: the selector shows, Export… carries its name.
    assert '<select name="vcenter"' in page and '<option value="hostile" selected>' in page
    assert "&amp;vcenter=hostile" in re.search(r'<a class="button" href="([^"]*)"', page).group(1)
    listed = rows(page)
    assert f"/dc/vm/prod/{html.escape(XSS)}" not in listed  # unescaped once, never twice
    for path in listed:  # each row's details page opens: the path round-trips through the link
        vm = operator_browser.get("/ui/inventory/vm/", {"ref": path, "vcenter": hostile})
        assert vm.status_code == 200, path
        assert XSS not in vm.content.decode()
    suggestions = operator_browser.get(
        "/ui/inventory/suggest/", {"vm_path": "onerror", "vcenter": hostile}, **HTMX
    ).content.decode()
    assert 'role="option"' in suggestions and XSS not in suggestions


def test_a_slash_in_a_name_is_escaped_in_its_path(operator_browser, hostile):
    page = operator_browser.get("/ui/inventory/", {"vcenter": hostile, "q": "web"}).content.decode()
    assert "/dc/vm/prod/web%2f01" in rows(page)


# ---- a vCenter that does not answer ------------------------------------------------------------


@pytest.fixture
def unreachable() -> str:
    """A vCenter on a port nothing listens on."""
    vcenter = VCenter(name="gone", url="https://127.0.0.1:9/sdk", username="svc")
    vcenter.password = "s3cret-never-shown"
    vcenter.save()
    return vcenter.name


def test_an_unreachable_vcenter_is_one_line_on_the_page_not_a_500(viewer_browser, unreachable):
    response = viewer_browser.get("/ui/inventory/", {"vcenter": unreachable})
    page = response.content.decode()
    assert response.status_code == 502
    assert re.search(r'<p class="error" role="alert">Cannot read the inventory: [^<\n]+</p>', page)
    assert "s3cret-never-shown" not in page and "Traceback" not in page


def test_an_unreachable_vcenter_is_said_in_the_table_htmx_swaps(viewer_browser, unreachable):
    response = viewer_browser.get("/ui/inventory/", {"vcenter": unreachable, "q": "web"}, **HTMX)
    assert response.status_code == 200 and "Cannot read the inventory" in response.content.decode()


def test_an_unreachable_vcenter_is_said_in_the_suggestions(operator_browser, unreachable):
    response = operator_browser.get(
        "/ui/inventory/suggest/", {"vm_path": "web", "vcenter": unreachable}, **HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200 and "cannot read the inventory" in page and 'role="option"' not in page


def test_a_page_past_the_last_shows_the_last_as_the_other_lists_do(viewer_browser, govc_env, monkeypatch):
    from dashboard import inventory_pages

    monkeypatch.setattr(inventory_pages, "VMS_PER_PAGE", 2)  # five VMs: three pages
    response = viewer_browser.get("/ui/inventory/", {"q": "/dc/vm", "page": "99999"})
    page = response.content.decode()
    assert response.status_code == 200 and rows(page) == ["/dc/vm/prod/web02"]
    assert "Page 3 of 3" in page and "No VM matches." not in page


def test_the_table_pages_through_the_vms(viewer_browser, govc_env, monkeypatch):
    from dashboard import inventory_pages

    monkeypatch.setattr(inventory_pages, "VMS_PER_PAGE", 2)  # five VMs: three pages
    first = viewer_browser.get("/ui/inventory/", {"q": "/dc/vm"}).content.decode()
    second = viewer_browser.get("/ui/inventory/", {"q": "/dc/vm", "page": "2"}, **HTMX).content.decode()
    assert rows(first) == ["/dc/vm/dev/app01", "/dc/vm/prod/app01"] and "Page 1 of 3" in first
    assert 'href="?q=%2Fdc%2Fvm&amp;page=2"' in first and 'rel="prev"' not in first
    assert rows(second) == ["/dc/vm/prod/db01", "/dc/vm/prod/web01"] and "Page 2 of 3" in second
    assert 'rel="prev"' in second and 'rel="next"' in second


# ---- names from vCenter inside our own sentences: the preflight panel ---------------------------


def panel(*findings) -> str:
    from inventory.preflight import PreflightReport

    return render_to_string(
        "dashboard/partials/preflight.html", {"report": PreflightReport(vm=None, findings=list(findings))}
    )


def test_a_name_with_a_right_to_left_override_reorders_nothing_else_in_a_finding():
    from inventory.findings import Finding

    reason = f"VM /dc/vm/prod/{BIDI} is powered on; ISO [LocalDS_0] {BIDI}.iso is connected"
    text = panel(Finding("blocker", "powered-on", reason, f"power off {BIDI} first"))
    # The word holding the override is isolated, so the sentence around it reads as written;
    # the reason and the action are isolated from the badge and from each other.
    assert f'<bdi class="reason">VM <bdi>/dc/vm/prod/{BIDI}</bdi> is powered on;' in text
    assert f"[LocalDS_0] <bdi>{BIDI}.iso</bdi> is connected</bdi>" in text
    assert f'<bdi class="action">power off <bdi>{BIDI}</bdi> first</bdi>' in text


def test_a_finding_is_still_escaped():
    from inventory.findings import Finding

    text = panel(Finding("warning", "snapshots", f"VM {XSS}\u202e has a snapshot", "ok"))
    assert XSS not in text and "VM &lt;img src=x" in text
    assert "<bdi>onclick=alert(1)&gt;\u202e</bdi> has a snapshot" in text


def test_every_name_on_a_vms_page_is_isolated():
    vm = record(
        BIDI,
        guest_id=BIDI,
        guest_full_name=BIDI,
        guest_detected=BIDI,
        current_snapshot=BIDI,
        nics=(NicRecord("Network adapter 1", BIDI, "00:50:56:aa:bb:cc", "vmxnet3"),),
        drives=(DriveRecord("CD/DVD drive 1", "cdrom", f"[{BIDI}] iso/{BIDI}.iso", True, True),),
        disks=tuple(replace(disk, datastore=BIDI, label=BIDI) for disk in record().disks),
    )
    text = render_to_string("dashboard/inventory_vm.html", {"vm": vm, "vcenter": "", "can_operate": False})
    # Every occurrence of the name starts right inside an isolate of its own.
    outside = re.sub(r"<bdi[^>]*>[^<]*</bdi>", "", text.split("<body", 1)[-1])
    assert BIDI not in outside.replace(f"Export {BIDI}", "")


# ---- the vcenter parameter: text no vCenter's name can hold -------------------------------------


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/ui/inventory/", {"vcenter": "\x00"}),
        ("/ui/inventory/vm/", {"ref": "/dc/vm/prod/web01", "vcenter": "\x00"}),
        ("/ui/inventory/vm/", {"ref": "/dc/vm/prod/web01", "vcenter": "lab\x00"}),
        ("/ui/inventory/suggest/", {"vm_path": "web", "vcenter": "\x00"}),
        ("/ui/inventory/suggest/", {"vm_path": "web", "vcenter": "v" * 500}),
    ],
)
def test_a_vcenter_holding_a_nul_is_unknown_not_a_500(operator_browser, path, query):
    response = operator_browser.get(path, query)
    assert response.status_code in (400, 404)
    assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize("query", [{"vcenter": "\x00"}, {"vcenter": "lab\x00", "q": "web"}])
def test_the_apis_vcenter_holding_a_nul_is_a_field_error(operator_browser, query):
    response = operator_browser.get("/vms", query)
    assert response.status_code == 400 and "vcenter" in response.json()


def test_the_apis_vm_with_a_vcenter_holding_a_nul_is_a_field_error(operator_browser):
    response = operator_browser.get("/vms/vm-42", {"vcenter": "\x00"})
    assert response.status_code == 400 and "vcenter" in response.json()


def test_a_deleted_vcenter_is_said_in_the_suggestions_status(operator_browser):
    query = {"vm_path": "web", "vcenter": "gone"}
    assert operator_browser.get("/ui/inventory/suggest/", query).status_code == 404
    response = operator_browser.get("/ui/inventory/suggest/", query, **HTMX)  # swapped: a 2xx
    page = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"<template data-status>no vCenter named [^<\n]*gone[^<\n]*</template>", page)
    assert 'role="option"' not in page and "<html" not in page
