"""A vCenter name may begin or end with a space: ``/dc/vm/prod/web01 `` is another VM than
``/dc/vm/prod/web01``. Every door keeps a VM path exactly as given, so the VM checked, shown and
exported is the one named, never its trimmed namesake."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from pyVim.task import WaitForTask

from exports.models import Job
from exports.pipeline.connect import VCenterTarget, vsphere_session
from exports.pipeline.errors import VMNotFound
from exports.pipeline.inventory import find_vm
from inventory import cache, service
from schedules.models import Schedule
from tests.cli_runner import run_in_process
from tests.conftest import govc_environment, start_simulator
from tests.test_dashboard_schedule_pages import schedule_form
from tests.test_dashboard_views import HTMX, converter_form

pytestmark = pytest.mark.vsphere

WEB01 = "/dc/vm/prod/web01"
TRAILING = "/dc/vm/prod/web01 "
LEADING = "/dc/vm/prod/ web01"
SPACED = (TRAILING, LEADING)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """web01 (powered off) and two namesakes with a space before or after the name, running: a
    preflight of the namesake finds it powered on, one of web01 does not."""
    server = start_simulator(tmp_path_factory.mktemp("vm-path-spaces"))
    si = server._si()
    for path, draft in ((TRAILING, "web01-trailing"), (LEADING, "web01-leading")):
        server.create_vm("/dc/vm/prod", draft, [])
        server.power_on(f"/dc/vm/prod/{draft}")
        WaitForTask(server.find_vm(f"/dc/vm/prod/{draft}").Rename_Task(newName=path.rsplit("/", 1)[1]), si=si)
    yield server
    server.stop()


@pytest.fixture
def morefs(sim) -> dict[str, str]:
    """Each path's VM's moref, read from the simulator by name (no path lookup involved)."""
    from pyVmomi import vim

    content = sim._si().RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    by_name = {vm.name: vm._moId for vm in view.view}
    view.Destroy()
    return {path: by_name[path.rsplit("/", 1)[1]] for path in (WEB01, *SPACED)}


@pytest.fixture(autouse=True)
def default_vcenter(sim, monkeypatch, settings):
    monkeypatch.delenv("GOVC_INSECURE", raising=False)
    for key, value in govc_environment(sim).items():
        monkeypatch.setenv(key, value)
    cache.clear()
    yield
    cache.clear()


def test_the_namesakes_are_three_vms(morefs):
    assert len(set(morefs.values())) == 3


# ---- the services -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", [WEB01, *SPACED])
def test_the_inventory_reads_the_vm_named_by_the_exact_path(path, morefs):
    assert service.get_vm(path).moref == morefs[path]
    service.list_vms()  # and from the cached list as well
    assert service.get_vm(path).moref == morefs[path]


@pytest.mark.parametrize("path", [WEB01, *SPACED])
def test_the_export_finds_the_vm_named_by_the_exact_path(sim, path, morefs):
    with vsphere_session(VCenterTarget.from_env(govc_environment(sim))) as si:
        assert find_vm(si, path)._moId == morefs[path]


@pytest.mark.django_db
def test_a_folder_filter_is_the_folder_named_by_the_exact_path():
    assert {vm.path for vm in service.list_vms(folder="/dc/vm/prod").results} >= {WEB01, *SPACED}
    assert service.list_vms(folder="/dc/vm/prod ").count == 0  # no folder "prod " here


def test_a_missing_vm_is_named_in_quotes_when_its_path_ends_with_a_space(sim):
    with vsphere_session(VCenterTarget.from_env(govc_environment(sim))) as si:
        with pytest.raises(VMNotFound, match='^VM not found: "/dc/vm/prod/app01 " '):
            find_vm(si, "/dc/vm/prod/app01 ")


# ---- the API ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SPACED)
def test_a_submitted_job_keeps_the_path_as_given(operator_api, export_root, path):
    body = {"vm_path": path, "output_path": str(export_root / "out")}
    response = operator_api.post("/jobs/submit", body, format="json")
    assert response.status_code == 202, response.content
    assert Job.objects.get().vm_path == path


def test_a_path_of_spaces_only_is_refused_with_a_field_error(operator_api, export_root):
    body = {"vm_path": "   ", "output_path": str(export_root / "out")}
    response = operator_api.post("/jobs/submit", body, format="json")
    assert response.status_code == 400
    assert "vm_path" in response.content.decode() and not Job.objects.exists()


@pytest.mark.parametrize("path", SPACED)
def test_a_schedule_keeps_the_path_as_given(operator_api, export_root, path):
    body = {"name": "nightly", "cron": "0 2 * * *", "vm_path": path, "output_path": str(export_root)}
    response = operator_api.post("/schedules", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["vm_path"] == path
    assert Schedule.objects.get().job_template["vm_path"] == path


@pytest.mark.parametrize("path", SPACED)
def test_the_api_reads_and_preflights_the_vm_named_by_the_exact_path(viewer_api, export_root, path, morefs):
    details = viewer_api.get("/vms/" + "/".join(quote(part, safe="") for part in path.lstrip("/").split("/")))
    assert details.status_code == 200 and details.json()["moref"] == morefs[path]
    body = {"vm_path": path, "output_path": str(export_root / "out")}
    report = viewer_api.post("/vms/preflight", body, format="json").json()
    assert report["vm"]["moref"] == morefs[path]
    assert "powered-on" in {finding["code"] for finding in report["findings"]}


def test_the_api_lists_the_folder_named_by_the_exact_path(viewer_api):
    assert viewer_api.get("/vms", {"folder": "/dc/vm/prod "}).json()["count"] == 0


# ---- the dashboard ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SPACED)
def test_the_details_page_shows_the_vm_named_by_the_exact_path(viewer_browser, path, morefs):
    page = viewer_browser.get("/ui/inventory/vm/", {"ref": path}).content.decode()
    assert morefs[path] in page and morefs[WEB01] not in page


@pytest.mark.parametrize("path", SPACED)
def test_the_converter_preflights_and_starts_the_vm_named_by_the_exact_path(
    operator_browser, export_root, path, morefs
):
    form = converter_form(vm_path=path, output_dir=str(export_root / "out"))
    panel = operator_browser.post("/ui/converter/preflight/", form, **HTMX).content.decode()
    assert "powered on" in panel
    operator_browser.post("/ui/converter/", form)
    assert Job.objects.get().vm_path == path


@pytest.mark.parametrize("path", SPACED)
def test_the_schedule_form_keeps_the_path_as_given(operator_browser, export_root, path):
    response = operator_browser.post("/ui/schedules/new/", schedule_form(vm_path=path), **HTMX)
    assert response.status_code == 200, response.content
    assert Schedule.objects.get().job_template["vm_path"] == path


def test_the_inventory_page_lists_the_folder_named_by_the_exact_path(viewer_browser, morefs):
    page = viewer_browser.get("/ui/inventory/", {"folder": "/dc/vm/prod "}).content.decode()
    assert quote(WEB01, safe="") not in page and "web01" not in page


# ---- the command line ---------------------------------------------------------------------------


def test_hyperexport_preflights_the_vm_named_by_the_exact_path(sim, tmp_path):
    env = govc_environment(sim)
    for path, powered_on in ((TRAILING, True), (LEADING, True), (WEB01, False)):
        done = run_in_process(
            "hyperexport", "-preflight", "-vm", path, "-output", str(tmp_path / "o"), env=env
        )
        assert ("powered on" in done.stdout + done.stderr) is powered_on, (path, done.stdout, done.stderr)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", SPACED)
def test_hyperctl_reads_and_schedules_the_vm_named_by_the_exact_path(cli_env, sim, path, morefs):
    env = cli_env | govc_environment(sim)
    info = run_in_process("hyperctl", "vms", "info", path, "-json", env=env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["moref"] == morefs[path]
    created = run_in_process("hyperctl", "schedules", "create", "nightly", "0 2 * * *", "-vm", path, env=env)
    assert created.returncode == 0, created.stderr
    assert Schedule.objects.get(name="nightly").job_template["vm_path"] == path
