"""What the inventory and preflight make of a vCenter answer that cannot be read: the
simulator behind a proxy that cuts, replaces or inflates its answers (``tests.vcenter_proxy``).

Every door (GET /vms, GET /vms/{ref}, POST /vms/preflight, ``hyperctl vms list``,
``hyperexport -preflight``) says so in one line naming the vCenter ("sent an answer that
cannot be read"), never a 500, a traceback or the password. A valid answer the fast decoder
did not expect (a prefixed ``xsi:type``) is read as pyvmomi reads it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import pytest

from inventory import cache, collect, soap
from tests.cli_runner import run_in_process
from tests.conftest import start_simulator
from tests.vcenter_proxy import AnswerProxy

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db]

WEB01 = "/dc/vm/prod/web01"
UNREADABLE = "sent an answer that cannot be read"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    sim = start_simulator(tmp_path_factory.mktemp("hostile-vcenter"))
    proxy = AnswerProxy(sim, tmp_path_factory.mktemp("hostile-proxy"))
    yield proxy
    proxy.stop()
    sim.stop()


@pytest.fixture
def env(proxy, monkeypatch, settings) -> dict[str, str]:
    """The daemon's default vCenter is the simulator through the proxy, read afresh each time."""
    environment = proxy.environment()
    monkeypatch.delenv("GOVC_INSECURE", raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings.HYPERSDK_INVENTORY_CACHE_SECONDS = 0
    cache.clear()
    yield environment
    proxy.rewrite = lambda request, status, body: (status, body)


def is_listing(request: bytes) -> bool:
    """The list's retrieval (a few plain properties per VM), or one of its later pages."""
    return (b"RetrievePropertiesEx" in request and b"toolsRunningStatus" in request) and (
        b"config.hardware.device" not in request
    )


def is_detail(request: bytes) -> bool:
    """A VM's full record (``read_vms``): what GET /vms/{ref}, a list's page and preflight read."""
    return b"RetrievePropertiesEx" in request and b"config.hardware.device" in request


def on(which: Callable[[bytes], bool], change: Callable[[bytes], bytes], status: int | None = None):
    def rewrite(request: bytes, answer_status: int, body: bytes) -> tuple[int, bytes]:
        if not which(request):
            return answer_status, body
        return (status or answer_status), change(body)

    return rewrite


def cut(body: bytes) -> bytes:
    return body[: len(body) // 2]


def html(body: bytes) -> bytes:
    return b"<html><body>502 Bad Gateway</body></html"


def unknown_type(body: bytes) -> bytes:
    return body.replace(b'type="Folder"', b'type="FolderX"', 1)


LAUGHS = (
    b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([ord("b") + n]), (b"&%s;" % bytes([ord("a") + n])) * 10)
        for n in range(8)
    )
    + b"]>"
)


def laughs(body: bytes) -> bytes:
    """A billion laughs: entities that expand to 10^9 bytes in a string value."""
    with_doctype = body.replace(b"?>", b"?>" + LAUGHS, 1)
    return re.sub(rb'(type="xsd:string">)', rb"\1&i;", with_doctype, count=1)


def assert_one_line(text: str, proxy: AnswerProxy) -> None:
    assert UNREADABLE in text, text
    assert f"vCenter 127.0.0.1:{proxy.port}" in text, text
    assert "Traceback" not in text
    assert proxy.sim.password not in text


LIST_CASES = {"cut short": cut, "html": html, "unknown type": unknown_type, "billion laughs": laughs}


@pytest.mark.parametrize("change", LIST_CASES.values(), ids=LIST_CASES.keys())
def test_a_list_answer_that_cannot_be_read_is_a_502_of_one_line(proxy, env, viewer_api, change):
    proxy.rewrite = on(is_listing, change)
    response = viewer_api.get("/vms", {"page_size": 3})
    assert response.status_code == 502, response.content
    detail = response.json()["detail"]
    assert "\n" not in detail
    assert_one_line(detail, proxy)


def test_hyperctl_vms_list_says_the_answer_cannot_be_read(proxy, env):
    proxy.rewrite = on(is_listing, cut)
    done = run_in_process("hyperctl", "vms", "list", env={**os.environ, **env})
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert_one_line(done.stderr, proxy)


DETAIL_CASES = {"cut short": (cut, None), "unknown type": (unknown_type, None), "garbage 500": (html, 500)}


@pytest.mark.parametrize(("change", "status"), DETAIL_CASES.values(), ids=DETAIL_CASES.keys())
def test_a_vm_answer_that_cannot_be_read_is_a_502_and_a_preflight_finding(
    proxy, env, viewer_api, change, status
):
    proxy.rewrite = on(is_detail, change, status)
    response = viewer_api.get(f"/vms{WEB01}")
    assert response.status_code == 502, response.content
    assert_one_line(response.json()["detail"], proxy)

    response = viewer_api.post("/vms/preflight", {"vm_path": WEB01}, format="json")
    assert response.status_code == 200, response.content
    [finding] = response.json()["findings"]
    assert (finding["level"], finding["code"]) == ("blocker", "vcenter-unreachable")
    assert_one_line(finding["reason"], proxy)


def test_hyperexport_preflight_says_the_answer_cannot_be_read(proxy, env, tmp_path):
    proxy.rewrite = on(is_detail, cut)
    done = run_in_process(
        "hyperexport", "-preflight", "-vm", WEB01, "-output", str(tmp_path / "out"), env={**os.environ, **env}
    )
    assert done.returncode != 0
    assert_one_line(done.stdout + done.stderr, proxy)


def test_a_prefixed_managed_object_reference_is_read_as_one(proxy, env, viewer_api):
    """``v:ManagedObjectReference`` with ``xmlns:v="urn:vim25"`` is what the unprefixed name is."""
    proxy.rewrite = on(
        is_listing,
        lambda body: body.replace(
            b'XMLSchema-instance:type="ManagedObjectReference"',
            b'XMLSchema-instance:type="v:ManagedObjectReference" xmlns:v="urn:vim25"',
        ),
    )
    response = viewer_api.get("/vms", {"q": "web01"})
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    assert (row["path"], row["folder"], row["datacenter"]) == (WEB01, "/dc/vm/prod", "dc")


def test_a_prefix_bound_two_ways_is_left_to_pyvmomi_which_reads_it(proxy, env, viewer_api):
    """``xsd`` rebound on an element that uses none: the fast decoder cannot tell which binding a
    value means from the answer as a whole, so it gives up and pyvmomi (which follows scopes)
    reads the list: two listing retrievals where a plain answer takes one."""
    listings = []

    def rebind(body: bytes) -> bytes:
        listings.append(1)
        return body.replace(b"<name>", b'<name xmlns:xsd="urn:elsewhere">', 1)

    proxy.rewrite = on(is_listing, lambda body: (listings.append(1), body)[1])
    assert viewer_api.get("/vms", {"q": "web01"}).status_code == 200
    assert len(listings) == 1
    listings.clear()
    proxy.rewrite = on(is_listing, rebind)
    response = viewer_api.get("/vms", {"q": "web01"})
    assert response.status_code == 200, response.content
    assert [row["path"] for row in response.json()["results"]] == [WEB01]
    assert len(listings) == 2


def test_a_vcenter_that_keeps_sending_a_token_ends_in_one_line(proxy, env, viewer_api, monkeypatch):
    monkeypatch.setattr(collect, "PAGE_OBJECTS", 2)  # the simulator pages: the list takes turns
    monkeypatch.setattr(soap, "MAX_PAGES", 5)
    endless = (
        b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        b'<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>again</token>'
        b"</returnval></ContinueRetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"
    )
    proxy.rewrite = on(lambda request: b"ContinueRetrievePropertiesEx" in request, lambda body: endless, 200)
    response = viewer_api.get("/vms", {"page_size": 3})
    assert response.status_code == 502, response.content
    assert_one_line(response.json()["detail"], proxy)
    assert "more than 5 pages" in response.json()["detail"]


def test_a_garbage_500_while_paging_names_what_went_wrong(proxy, env, viewer_api, monkeypatch):
    monkeypatch.setattr(collect, "PAGE_OBJECTS", 2)
    proxy.rewrite = on(
        lambda request: b"ContinueRetrievePropertiesEx" in request,
        lambda body: b"<html>Internal error</html>",
        status=500,
    )
    response = viewer_api.get("/vms", {"page_size": 3})
    assert response.status_code == 502, response.content
    detail = response.json()["detail"]
    assert "None" not in detail
    assert_one_line(detail, proxy)


def test_an_answer_larger_than_the_cap_is_not_read(proxy, env, viewer_api, monkeypatch):
    monkeypatch.setattr(soap, "MAX_ANSWER_BYTES", 1024)
    proxy.rewrite = on(is_listing, lambda body: body + b" " * 2048)
    response = viewer_api.get("/vms", {"page_size": 3})
    assert response.status_code == 502, response.content
    assert "larger than" in response.json()["detail"]
    assert_one_line(response.json()["detail"], proxy)


def inaccessible(body: bytes) -> bytes:
    """What vCenter answers of a VM whose .vmx it cannot reach: no config, no layout."""
    body = re.sub(rb"<propSet><name>(config\.|layoutEx)[^<]*</name>.*?</propSet>", b"", body, flags=re.S)
    return re.sub(rb"(<name>runtime\.connectionState</name><val[^>]*>)connected<", rb"\1inaccessible<", body)


def test_an_inaccessible_vm_is_listed_as_such_and_blocks_preflight(proxy, env, viewer_api):
    proxy.rewrite = on(is_detail, inaccessible)
    response = viewer_api.get(f"/vms{WEB01}")
    assert response.status_code == 200, response.content
    assert response.json()["connection_state"] == "inaccessible"

    response = viewer_api.post("/vms/preflight", {"vm_path": WEB01}, format="json")
    assert response.status_code == 200, response.content
    blockers = [f for f in response.json()["findings"] if f["level"] == "blocker"]
    assert [f["code"] for f in blockers] == ["vm-inaccessible"]
    assert "vCenter cannot read the VM's configuration" in blockers[0]["reason"]
    assert "re-register the VM" in blockers[0]["action"]
    assert response.json()["blocked"] is True


@pytest.mark.django_db(transaction=True)
def test_hyperexport_preflight_through_the_daemon_says_it_in_one_line(proxy, cli_env, export_root):
    """A vCenter of the admin behind the proxy: the daemon's POST /vms/preflight answers the
    finding, the CLI prints it (remote: over HTTP; local: the daemon's services in process)."""
    from exports.models import VCenter

    vcenter = VCenter(name="hostile", url=f"https://127.0.0.1:{proxy.port}/sdk", username=proxy.sim.username)
    vcenter.ca_bundle = proxy.ca_file.read_text()
    vcenter.password = proxy.sim.password
    vcenter.save()
    proxy.rewrite = on(is_detail, cut)
    try:
        args = ["-preflight", "-vm", WEB01, "-vcenter", "hostile", "-output", str(export_root / "o")]
        done = run_in_process("hyperexport", "--use-daemon", *args, env=cli_env)
    finally:
        proxy.rewrite = lambda request, status, body: (status, body)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0].startswith("blocker: vCenter 127.0.0.1:")
    assert_one_line(done.stdout, proxy)
    assert done.stderr == ""


def asks(method: bytes) -> Callable[[bytes], bool]:
    return lambda request: b"<" + method in request or b":" + method in request


ODD_CALLS = {
    # FindByInventoryPath (the pipeline's and preflight's lookup) names a type nobody knows.
    "FindByInventoryPath": lambda body: re.sub(rb'type="VirtualMachine"', b'type="Bogus"', body, count=1),
    # The privilege check's answer holds an element its type does not have.
    "HasPrivilegeOnEntities": lambda body: body.replace(b"<privId>", b"<bogus>1</bogus><privId>", 1),
}


@pytest.mark.parametrize("method", ODD_CALLS)
def test_any_call_whose_answer_pyvmomi_cannot_decode_is_one_line(
    proxy, env, operator_api, export_root, tmp_path, method
):
    proxy.rewrite = on(asks(method.encode()), ODD_CALLS[method])
    response = operator_api.post(
        "/vms/preflight", {"vm_path": WEB01, "output_path": str(export_root / "api")}, format="json"
    )
    assert response.status_code == 200, response.content
    [finding] = [f for f in response.json()["findings"] if f["level"] == "blocker"]
    assert_one_line(finding["reason"], proxy)
    assert method in finding["reason"]
    for args in (["-preflight"], []):  # the checks alone, and an export
        done = run_in_process(
            "hyperexport", *args, "-vm", WEB01, "-output", str(tmp_path / "cli"), env={**os.environ, **env}
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert_one_line(done.stdout + done.stderr, proxy)
