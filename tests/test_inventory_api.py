"""The inventory API (GET /vms, GET /vms/{ref}, POST /vms/preflight) against a vSphere simulator
of its own: paging and filters as the other lists, a VM by path or moref, a '/' inside a name
kept apart from a folder's '/', errors (400 fields, 404, 502), roles, and the OpenAPI schema."""

from __future__ import annotations

import dataclasses
import json
import socket
from datetime import datetime
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from rest_framework.test import APIClient

from inventory.findings import Finding
from inventory.records import DiskRecord, DriveRecord, NicRecord, VMRecord
from tests.conftest import govc_environment, register_vcenter, start_simulator

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db]

WEB01 = "/dc/vm/prod/web01"
# A VM named "a/b" beside a folder "a" holding a VM "b": /dc/vm/apitest/a%2fb and /dc/vm/apitest/a/b.
# vCenter holds such a name escaped ("a%2fb" is what its name property says).
SLASHED_STORED = "a%2fb"
FOLDER = "/dc/vm/apitest"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A simulator of this module's own: the VMs made here change no other module's inventory."""
    sim = start_simulator(tmp_path_factory.mktemp("inventory-api"))
    sim.create_vm(FOLDER, SLASHED_STORED, [])
    sim.create_vm(f"{FOLDER}/a", "b", [])
    yield sim
    sim.stop()


@pytest.fixture
def default_vcenter(sim, monkeypatch) -> dict[str, str]:
    """The daemon's default vCenter (GOVC_*) is this module's simulator."""
    env = govc_environment(sim)
    monkeypatch.delenv("GOVC_INSECURE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def listing(client: APIClient, **params) -> dict:
    response = client.get("/vms", params)
    assert response.status_code == 200, response.content
    return response.json()


def every_vm(client: APIClient, **params) -> list[dict]:
    return listing(client, page_size=1000, **params)["results"]


def vm_url(path_or_moref: str) -> str:
    """As a client must write it: each segment percent-encoded ('%2f' in a name as '%252f')."""
    return "/vms/" + quote(path_or_moref.lstrip("/"), safe="/")


def summary_fields() -> set[str]:
    devices = {"disks", "nics", "drives"}
    return {f.name for f in dataclasses.fields(VMRecord)} - devices | {"disk_count", "nic_count"}


# ---- GET /vms ----------------------------------------------------------------------------------


def test_a_viewer_lists_the_simulators_vms_paged_like_the_other_lists(default_vcenter, viewer_api):
    first = listing(viewer_api, page_size=2)
    assert first["count"] >= 7  # the guide's five, and this module's two
    assert len(first["results"]) == 2
    assert first["previous"] is None
    assert parse_qs(urlsplit(first["next"]).query)["page"] == ["2"]
    assert first["vcenter"] is None  # the daemon's default
    assert datetime.fromisoformat(first["cached_at"]).utcoffset() is not None
    for row in first["results"]:
        assert set(row) == summary_fields()
    second = viewer_api.get(first["next"]).json()
    assert parse_qs(urlsplit(second["previous"]).query).get("page") is None  # page 1
    paths = [row["path"] for row in every_vm(viewer_api)]
    assert paths == sorted(paths)
    assert WEB01 in paths
    assert [row["path"] for row in first["results"] + second["results"]] == paths[:4]


def test_the_filters_narrow_the_list(default_vcenter, viewer_api):
    web = every_vm(viewer_api, q="WEB")
    assert {row["path"] for row in web} >= {WEB01, "/dc/vm/prod/web02"}
    assert all("web" in (row["name"] + row["path"]).lower() for row in web)
    prod = every_vm(viewer_api, folder="/dc/vm/prod")
    assert {row["path"] for row in prod} == {f"/dc/vm/prod/{n}" for n in ("web01", "web02", "app01", "db01")}
    every = every_vm(viewer_api)
    for state in ("on", "off"):
        rows = every_vm(viewer_api, power_state=state)
        assert rows == [row for row in every if row["power_state"] == state]
    guest = every[0]["guest_id"]
    assert every_vm(viewer_api, guest_os=guest.upper())
    assert every_vm(viewer_api, guest_os="no-such-guest-os") == []


def test_a_refresh_reads_a_vm_created_since_the_last_read(default_vcenter, sim, viewer_api, monkeypatch):
    from inventory import service

    monkeypatch.setattr(service, "REFRESH_SHARED_SECONDS", 0)  # else a read just made answers it
    before = listing(viewer_api)
    path = sim.create_vm(FOLDER, "late-arrival", [])
    assert listing(viewer_api)["cached_at"] == before["cached_at"]  # from the cache
    fresh = listing(viewer_api, refresh=1, q="late-arrival", page_size=1)
    assert [row["path"] for row in fresh["results"]] == [path]
    assert fresh["cached_at"] >= before["cached_at"]  # to the second
    # Its next page comes from the cache just filled, not from vCenter again.
    assert "refresh" not in listing(viewer_api, refresh=1, page_size=1)["next"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"power_state": "sleeping"}, "power_state"),
        ({"power_state": ""}, "power_state"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": "abc"}, "page_size"),
        ({"page_size": "1001"}, "page_size"),
        ({"refresh": "perhaps"}, "refresh"),
        ({"q": "x" * 1025}, "q"),
    ],
)
def test_a_bad_parameter_is_a_field_error(default_vcenter, viewer_api, params, field):
    response = viewer_api.get("/vms", params)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_page_past_the_end_is_a_404_saying_which(default_vcenter, viewer_api):
    response = viewer_api.get("/vms", {"page": 999})
    assert response.status_code == 404
    assert response.json() == {"detail": "there is no page 999: That page contains no results"}


def test_an_unknown_vcenter_is_refused_as_submit_refuses_it(default_vcenter, operator_api):
    listed = operator_api.get("/vms", {"vcenter": "nowhere"})
    detail = operator_api.get(vm_url(WEB01), {"vcenter": "nowhere"})
    submitted = operator_api.post("/jobs/submit", {"vm_path": WEB01, "vcenter": "nowhere"}, format="json")
    assert listed.status_code == detail.status_code == submitted.status_code == 400
    assert listed.json() == detail.json() == {"vcenter": submitted.json()["vcenter"]}


def test_a_named_vcenter_is_listed_under_its_name(sim, viewer_api, monkeypatch):
    monkeypatch.delenv("GOVC_URL", raising=False)  # not the default's: the stored one's
    register_vcenter(sim, "lab")
    page = listing(viewer_api, vcenter="lab", q="web01")
    assert page["vcenter"] == "lab"
    assert [row["path"] for row in page["results"]] == [WEB01]
    assert viewer_api.get(vm_url(WEB01), {"vcenter": "lab"}).json()["vcenter"] == "lab"


# ---- GET /vms/{ref} ----------------------------------------------------------------------------


def test_a_vm_by_path_and_by_moref_holds_every_field(default_vcenter, viewer_api):
    by_path = viewer_api.get(vm_url(WEB01))
    assert by_path.status_code == 200, by_path.content
    vm = by_path.json()
    assert set(vm) == {f.name for f in dataclasses.fields(VMRecord)} | {"vcenter"}
    assert (vm["path"], vm["name"], vm["vcenter"]) == (WEB01, "web01", None)
    for key, record in (("disks", DiskRecord), ("nics", NicRecord), ("drives", DriveRecord)):
        assert all(set(item) == {f.name for f in dataclasses.fields(record)} for item in vm[key])
    assert vm["disks"], "the simulator's VMs have a disk"
    assert viewer_api.get(vm_url(vm["moref"])).json() == vm
    assert viewer_api.get("/vms" + WEB01).json() == vm  # a path needing no quoting, as is


def test_a_slash_inside_a_name_stays_apart_from_a_folders_slash(default_vcenter, viewer_api):
    rows = {row["path"]: row for row in every_vm(viewer_api, folder=FOLDER, refresh=1)}
    slashed, nested = rows[f"{FOLDER}/a%2fb"], rows[f"{FOLDER}/a/b"]
    assert (slashed["name"], nested["name"]) == (SLASHED_STORED, "b")
    assert vm_url(slashed["path"]).endswith("/apitest/a%252fb")
    got_slashed = viewer_api.get(vm_url(slashed["path"])).json()
    got_nested = viewer_api.get(vm_url(nested["path"])).json()
    assert got_slashed["moref"] == slashed["moref"] != got_nested["moref"] == nested["moref"]
    # Unquoted, the '%2f' is a '/' to HTTP: the VM "b" in the folder "a".
    assert viewer_api.get(f"/vms{FOLDER}/a%2fb").json()["moref"] == nested["moref"]


def test_an_unknown_vm_is_a_404_of_one_line(default_vcenter, viewer_api):
    # The last: a character vCenter's SOAP cannot carry is no VM's (not a failed request to it).
    for ref in (
        "/dc/vm/prod/nothing-here",
        "vm-999999",
        "/dc/vm/prod/web01/deeper",
        "/dc/vm/\x05\ufffe",
        "/dc/vm/a\nb",
    ):
        response = viewer_api.get(vm_url(ref))
        assert response.status_code == 404, ref
        detail = response.json()["detail"]
        assert "\n" not in detail and detail


# ---- vCenter unreachable -----------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_vcenter_is_a_502_of_one_line_without_its_password(viewer_api):
    from exports.models import VCenter

    down = VCenter(name="down", url=f"https://127.0.0.1:{closed_port()}/sdk", username="root", insecure=True)
    down.password = "hunter2-never-shown"
    down.save()
    for response in (
        viewer_api.get("/vms", {"vcenter": "down"}),
        viewer_api.get(vm_url(WEB01), {"vcenter": "down"}),
    ):
        assert response.status_code == 502
        body = response.json()
        assert list(body) == ["detail"] and body["detail"] and "\n" not in body["detail"]
        assert "hunter2" not in response.content.decode()


def test_a_refused_log_in_is_a_502_without_the_password(sim, viewer_api):
    wrong = register_vcenter(sim, "wrong-password")
    wrong.password = "not-the-simulators-password"
    wrong.save()
    response = viewer_api.get("/vms", {"vcenter": "wrong-password", "refresh": 1})
    assert response.status_code == 502
    assert "not-the-simulators-password" not in response.content.decode()


# ---- roles -------------------------------------------------------------------------------------


ENDPOINTS = [("get", "/vms"), ("get", "/vms/dc/vm/prod/web01"), ("post", "/vms/preflight")]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_stranger_gets_401_and_an_account_without_a_role_403(no_role_api, method, path):
    assert getattr(APIClient(), method)(path, {}, format="json").status_code == 401
    refused = getattr(no_role_api, method)(path, {}, format="json")
    assert refused.status_code == 403
    assert "no HyperSDK role" in refused.json()["detail"]


def test_a_viewer_may_run_a_preflight(default_vcenter, viewer_api):
    response = viewer_api.post("/vms/preflight", {"vm_path": WEB01}, format="json")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["vm"]["path"] == WEB01
    assert isinstance(report["blocked"], bool)
    for finding in report["findings"]:
        assert set(finding) == {f.name for f in dataclasses.fields(Finding)}


def test_a_preflight_of_a_missing_vm_is_a_blocker_not_an_error(default_vcenter, operator_api):
    report = operator_api.post("/vms/preflight", {"vm_path": "/dc/vm/prod/gone"}, format="json").json()
    assert report["vm"] is None and report["blocked"] is True
    assert "vm-not-found" in [finding["code"] for finding in report["findings"]]


def test_a_bad_job_spec_gets_the_field_errors_submit_gives(default_vcenter, operator_api):
    spec = {"vm_path": "web01", "parallel": 0}
    preflight = operator_api.post("/vms/preflight", spec, format="json")
    submitted = operator_api.post("/jobs/submit", spec, format="json")
    assert preflight.status_code == 400
    assert {name: preflight.json()[name] for name in ("vm_path", "parallel")} == {
        name: submitted.json()[name] for name in ("vm_path", "parallel")
    }


# ---- OpenAPI -----------------------------------------------------------------------------------


def test_the_schema_documents_every_field_of_the_records(viewer_api):
    response = viewer_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    assert {"/vms", "/vms/{ref}", "/vms/preflight"} <= set(schema["paths"])
    assert "502" in schema["paths"]["/vms"]["get"]["responses"]
    assert "502" in schema["paths"]["/vms/{ref}"]["get"]["responses"]
    components = schema["components"]["schemas"]

    def properties(name: str) -> set[str]:
        return set(components[name]["properties"])

    assert properties("VM") == {f.name for f in dataclasses.fields(VMRecord)} | {"vcenter"}
    assert properties("VMSummary") == summary_fields()
    assert properties("VMDisk") == {f.name for f in dataclasses.fields(DiskRecord)}
    assert properties("VMNic") == {f.name for f in dataclasses.fields(NicRecord)}
    assert properties("VMDrive") == {f.name for f in dataclasses.fields(DriveRecord)}
    assert properties("Finding") == {f.name for f in dataclasses.fields(Finding)}
    assert properties("VMPage") == {"count", "next", "previous", "results", "vcenter", "cached_at"}
    assert "bytes" in components["VM"]["properties"]["estimated_export_bytes"]["description"]
