"""The inventory service against the vSphere test server: filters, pages, the per-vCenter cache
and its refresh, one VM by path or moref, and vCenter errors in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyVim.task import WaitForTask
from pyVmomi import SoapAdapter

from exports.models import VCenter
from exports.pipeline.errors import VCenterConnectionError
from hypersdk.lib.errors import InvalidInput, NotFoundError
from inventory import cache, service
from tests.conftest import govc_environment, start_simulator
from tests.vsphere_sim.harness import DiskSpec, NicSpec

pytestmark = pytest.mark.vsphere

PROD = ["/dc/vm/prod/app01", "/dc/vm/prod/db01", "/dc/vm/prod/web01", "/dc/vm/prod/web02"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The simulator's five VMs, a running Debian with tools, and a name holding a '/'."""
    server = start_simulator(tmp_path_factory.mktemp("inventory-service"))
    server.create_vm(
        "/dc/vm/prod/linux",
        "deb01",
        [DiskSpec(None, size_mib=8)],
        nics=[NicSpec()],
        guest_id="otherLinux64Guest",
        power_on=True,
        tools="running",
        detected_guest_id="debian12_64Guest",
    )
    server.create_vm("/dc/vm/dev", "backup/daily", [DiskSpec(None, size_mib=8)])
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def default_vcenter(sim, monkeypatch, settings):
    """The daemon's default vCenter is the simulator; each test starts with nothing cached."""
    monkeypatch.delenv("GOVC_INSECURE", raising=False)
    for key, value in govc_environment(sim).items():
        monkeypatch.setenv(key, value)
    settings.HYPERSDK_INVENTORY_CACHE_SECONDS = 300
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def soap_calls(monkeypatch) -> Counter:
    """Every SOAP call any session makes from now on, by method name."""
    calls: Counter = Counter()
    serialize = SoapAdapter.SoapStubAdapter.SerializeRequest

    def counting(self, mo, info, args):
        calls[info.name] += 1
        return serialize(self, mo, info, args)

    monkeypatch.setattr(SoapAdapter.SoapStubAdapter, "SerializeRequest", counting)
    return calls


def paths(page) -> list[str]:
    return [record.path for record in page.results]


def test_the_first_page_lists_every_vm_ordered_by_path():
    page = service.list_vms()

    assert page.count == 7 and page.page == 1 and page.page_size == service.DEFAULT_PAGE_SIZE
    assert paths(page) == sorted(paths(page))
    assert "/dc/vm/dev/backup%2fdaily" in paths(page) and "/dc/vm/prod/linux/deb01" in paths(page)
    assert page.vcenter == "" and page.cached_at.endswith("+00:00")
    assert all(record.disks and record.moref.startswith("vm-") for record in page.results)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"q": "APP01"}, ["/dc/vm/dev/app01", "/dc/vm/prod/app01"]),
        ({"q": "backup/daily"}, ["/dc/vm/dev/backup%2fdaily"]),
        ({"q": "prod/web"}, ["/dc/vm/prod/web01", "/dc/vm/prod/web02"]),
        ({"folder": "dc/vm/prod"}, sorted([*PROD, "/dc/vm/prod/linux/deb01"])),
        ({"folder": "/dc/vm/prod/linux/"}, ["/dc/vm/prod/linux/deb01"]),
        ({"folder": "/dc/vm/pro"}, []),
        ({"power_state": "on"}, ["/dc/vm/prod/linux/deb01"]),
        ({"guest_os": "DEBIAN"}, ["/dc/vm/prod/linux/deb01"]),  # what the tools detect
        ({"guest_os": "otherlinux"}, ["/dc/vm/prod/linux/deb01"]),  # as configured
        ({"q": "app", "folder": "/dc/vm/dev", "power_state": "off"}, ["/dc/vm/dev/app01"]),
    ],
)
def test_filters_select_the_vms(filters, expected):
    page = service.list_vms(**filters)
    assert paths(page) == expected and page.count == len(expected)


def test_pages_split_the_list_in_order():
    whole = paths(service.list_vms())
    pages = [service.list_vms(page=n, page_size=3) for n in (1, 2, 3)]

    assert [len(p.results) for p in pages] == [3, 3, 1] and {p.count for p in pages} == {7}
    assert [path for p in pages for path in paths(p)] == whole
    assert service.list_vms(page=4, page_size=3).results == []


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"power_state": "maybe"}, "power_state"),
        ({"page": 0}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": service.MAX_PAGE_SIZE + 1}, "page_size"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(bad, field, soap_calls):
    with pytest.raises(InvalidInput) as refused:
        service.list_vms(**bad)
    assert refused.value.field == field and "\n" not in str(refused.value)
    assert not soap_calls  # refused before asking vCenter


def test_a_cached_list_asks_vcenter_nothing(soap_calls):
    first = service.list_vms(page_size=3)
    # One retrieval for the whole list, one for the page's records, in one session; never one per VM.
    assert soap_calls["RetrievePropertiesEx"] == 2 and soap_calls["Login"] == 1

    soap_calls.clear()
    assert service.list_vms(page_size=3) == first
    assert service.list_vms(q=first.results[0].name, page_size=3).results[0] == first.results[0]
    assert not soap_calls


def test_a_page_not_shown_yet_reads_only_its_records(soap_calls):
    service.list_vms(page_size=3)
    soap_calls.clear()

    second = service.list_vms(page=2, page_size=3)
    assert len(second.results) == 3
    assert soap_calls["RetrievePropertiesEx"] == 1  # the page's records: the list stays cached
    soap_calls.clear()
    service.list_vms(page=2, page_size=3)
    assert not soap_calls


def test_a_vm_made_after_the_list_is_read_appears_on_refresh(sim, monkeypatch):
    monkeypatch.setattr(service, "REFRESH_SHARED_SECONDS", 0)  # no read shared: just made
    before = service.list_vms(folder="/dc/vm/late")
    path = sim.create_vm("/dc/vm/late", "late01", [DiskSpec(None, size_mib=8)])
    try:
        assert service.list_vms(folder="/dc/vm/late").count == before.count == 0
        fresh = service.refresh()
        assert fresh.count == 8 and fresh.cached_at >= before.cached_at
        assert paths(service.list_vms(folder="/dc/vm/late")) == [path]
        assert service.list_vms(q="late01", refresh=True).count == 1
    finally:
        WaitForTask(sim.find_vm(path).Destroy_Task())  # the other tests count seven VMs


def test_a_vm_read_again_moves_in_the_list_its_filters_and_rows_agreeing(sim):
    path = sim.create_vm("/dc/vm/again", "again01", [DiskSpec(None, size_mib=8)])
    vm = sim.find_vm(path)
    try:
        assert [r.power_state for r in service.list_vms(q="again01").results] == ["off"]
        sim.power_on(path)
        WaitForTask(vm.Rename_Task("again02"), si=sim._si())
        with pytest.raises(NotFoundError):
            service.get_vm(path, refresh=True)  # the path the cached list knows names no VM now
        record = service.get_vm(vm._moId)  # read again by that refresh: the list learnt it
        assert (record.path, record.power_state) == ("/dc/vm/again/again02", "on")
        assert service.list_vms(q="again", power_state="off").count == 0
        assert [(r.path, r.power_state) for r in service.list_vms(q="again", power_state="on").results] == [
            (record.path, "on")
        ]
        assert service.list_vms(q="again01").count == 0
        with pytest.raises(NotFoundError):
            service.get_vm(path)  # the old path names no VM any more
    finally:
        sim.power_off("/dc/vm/again/again02")
        WaitForTask(vm.Destroy_Task())  # the other tests count seven VMs
        cache.clear()


def test_a_refresh_within_seconds_of_a_read_answers_that_read(soap_calls):
    first = service.list_vms()
    reads = soap_calls["RetrievePropertiesEx"]
    again = service.refresh()
    assert soap_calls["RetrievePropertiesEx"] == reads and again.cached_at == first.cached_at


def test_refreshes_asked_together_share_one_read(soap_calls, monkeypatch):
    monkeypatch.setattr(service, "REFRESH_SHARED_SECONDS", 0)  # only the read under way is shared
    service.refresh()
    one_read = soap_calls["RetrievePropertiesEx"]
    soap_calls.clear()
    start = threading.Barrier(8)

    def refresh() -> str:
        start.wait()
        return service.refresh().cached_at

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: refresh(), range(8)))
    # Eight viewers pressing Refresh at once: one of them reads, the others take its list.
    assert soap_calls["RetrievePropertiesEx"] == one_read and len(set(answers)) == 1


def test_with_no_cache_period_every_list_reads_vcenter(settings, soap_calls):
    settings.HYPERSDK_INVENTORY_CACHE_SECONDS = 0
    service.list_vms(page_size=1)
    service.list_vms(page_size=1)
    assert soap_calls["RetrievePropertiesEx"] == 4


@pytest.mark.parametrize(
    "ref", ["/dc/vm/prod/web01", "dc/vm/prod/web01", "/dc/vm/prod/web01/", "/dc/vm//prod/web01"]
)
def test_a_vm_is_found_by_its_path_written_loosely(ref):
    record = service.get_vm(ref)
    assert record.path == "/dc/vm/prod/web01" and record.name == "web01"


@pytest.mark.parametrize("ref", [" /dc/vm/prod/web01", "/dc/vm/prod/web01 ", "/dc/vm/prod/ web01"])
def test_spaces_around_a_name_are_part_of_it(ref):
    # vCenter names may begin or end with a space: trimming would name another VM (web01).
    with pytest.raises(NotFoundError) as failed:
        service.get_vm(ref)
    assert str(failed.value) == (f'VM not found: "{ref}"' if ref != ref.strip() else f"VM not found: {ref}")


def test_a_vm_is_found_by_its_moref():
    path = "/dc/vm/prod/db01"
    moref = service.get_vm(path).moref
    assert service.get_vm(moref).path == path


@pytest.mark.parametrize(
    "ref", ["/dc/vm/dev/backup%2fdaily", "/dc/vm/dev/backup%2Fdaily", "/dc/vm/dev/backup/daily"]
)
def test_a_name_with_a_slash_is_found_escaped_or_not(ref):
    assert service.get_vm(ref).path == "/dc/vm/dev/backup%2fdaily"


def test_a_listed_vm_is_answered_from_the_cache(soap_calls):
    listed = service.list_vms(q="web01").results[0]
    soap_calls.clear()

    assert service.get_vm("/dc/vm/prod/web01") == listed
    assert service.get_vm(listed.moref) == listed
    assert not soap_calls
    service.get_vm(listed.moref, refresh=True)
    assert soap_calls["RetrievePropertiesEx"] == 1


@pytest.mark.parametrize("ref", ["/dc/vm/prod/nope", "vm-99999", "/dc/vm/prod"])
def test_an_unknown_vm_is_not_found(ref):
    with pytest.raises(NotFoundError, match="VM not found: "):
        service.get_vm(ref)


def test_no_vm_named_is_invalid_input():
    with pytest.raises(InvalidInput):
        service.get_vm(" / ")


@pytest.mark.django_db
def test_an_unknown_vcenter_is_not_found():
    with pytest.raises(NotFoundError, match="no vCenter named 'nowhere'"):
        service.list_vms(vcenter="nowhere")
    with pytest.raises(NotFoundError, match="no vCenter named 'nowhere'"):
        service.get_vm("/dc/vm/prod/web01", vcenter="nowhere")


@pytest.mark.django_db
def test_a_vcenter_of_the_admin_is_listed_and_read_again_once_edited(sim):
    lab = VCenter(name="lab", url=sim.url, username=sim.username, ca_bundle=sim.ca_file.read_text())
    lab.password = sim.password
    lab.save()
    page = service.list_vms(vcenter="lab")
    assert page.vcenter == "lab" and page.count >= 7

    lab.password = "wrong-Secret-42"
    lab.save()
    with pytest.raises(VCenterConnectionError) as failed:
        service.list_vms(vcenter="lab")  # a new identity: not the list cached with the old one
    message = str(failed.value)
    assert "authentication failed" in message and "\n" not in message and "wrong-Secret-42" not in message


@pytest.mark.django_db
def test_an_unreachable_vcenter_is_one_line_without_its_password(sim):
    down = VCenter(name="down", url="https://127.0.0.1:9/sdk", username="root", insecure=True)
    down.password = "Hidden-Pass-7"
    down.save()
    for call in (lambda: service.list_vms(vcenter="down"), lambda: service.get_vm("vm-1", vcenter="down")):
        with pytest.raises(VCenterConnectionError) as failed:
            call()
        message = str(failed.value)
        assert "127.0.0.1:9" in message and "\n" not in message and "Hidden-Pass-7" not in message


@pytest.mark.django_db
@pytest.mark.parametrize("ref", ["٣", "vm-٣", "dc", "/dc/vm", "²/vm"])
def test_a_ref_too_short_for_a_vm_path_is_not_found_without_asking_vcenter(ref):
    down = VCenter(name="down", url="https://127.0.0.1:9/sdk", username="root", insecure=True)
    down.save()
    # The vCenter is unreachable: a NotFoundError (not a connection error) proves it was not asked.
    with pytest.raises(NotFoundError, match="VM not found: "):
        service.get_vm(ref, vcenter="down")


def test_a_vcenter_that_stops_answering_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "REFRESH_SHARED_SECONDS", 0)  # the refresh below reads
    gone = start_simulator(tmp_path / "gone")
    for key, value in govc_environment(gone).items():
        monkeypatch.setenv(key, value)
    service.list_vms()
    gone.stop()
    with pytest.raises(VCenterConnectionError) as failed:
        service.refresh()
    assert "\n" not in str(failed.value) and gone.password not in str(failed.value)


@pytest.mark.parametrize("value", ["soon", "-1", "86401"])
def test_a_bad_cache_period_stops_start_up_naming_the_setting(value):
    env = dict(os.environ, HYPERSDK_INVENTORY_CACHE_SECONDS=value, DJANGO_SETTINGS_MODULE="hypersdk.settings")
    proc = subprocess.run(
        [sys.executable, "-c", "import hypersdk.settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "HYPERSDK_INVENTORY_CACHE_SECONDS" in proc.stderr


def test_a_refreshed_path_names_the_vm_now_there_after_renames(sim):
    first = sim.create_vm("/dc/vm/swap", "web01", [DiskSpec(None, size_mib=8)])
    second = sim.create_vm("/dc/vm/swap", "web02", [DiskSpec(None, size_mib=8)])
    vm1, vm2 = sim.find_vm(first), sim.find_vm(second)
    try:
        assert [r.path for r in service.list_vms(folder="/dc/vm/swap").results] == [first, second]
        WaitForTask(vm2.Rename_Task("web02-old"), si=sim._si())
        WaitForTask(vm1.Rename_Task("web02"), si=sim._si())

        assert service.get_vm(second, refresh=True).moref == vm1._moId
        with pytest.raises(NotFoundError, match="VM not found: "):
            service.get_vm(first, refresh=True)
        listed = service.list_vms(folder="/dc/vm/swap").results
        assert [(r.path, r.moref) for r in listed] == [(second, vm1._moId), (second + "-old", vm2._moId)]
    finally:
        for vm in (vm1, vm2):
            WaitForTask(vm.Destroy_Task())  # the other tests count seven VMs
        cache.clear()


def test_a_vm_found_gone_on_refresh_leaves_the_cached_list(sim):
    path = sim.create_vm("/dc/vm/gone", "snapgone1", [DiskSpec(None, size_mib=8)])
    moref = service.list_vms(q="snapgone1").results[0].moref
    WaitForTask(sim.find_vm(path).Destroy_Task())
    try:
        with pytest.raises(NotFoundError):
            service.get_vm(moref, refresh=True)
        assert service.list_vms(q="snapgone1").count == 0
        with pytest.raises(NotFoundError):
            service.get_vm(moref)  # not answered from the cache any more
    finally:
        cache.clear()


@pytest.mark.django_db
def test_a_vcenter_of_the_admin_not_trusted_is_told_to_fix_it_in_the_admin(sim):
    """Its CA bundle and insecure box are in the admin: advice on GOVC_* would not help."""
    untrusted = VCenter(name="noca", url=sim.url, username=sim.username)
    untrusted.password = sim.password
    untrusted.save()
    with pytest.raises(VCenterConnectionError) as failed:
        service.list_vms(vcenter="noca")
    message = str(failed.value)
    assert message.startswith("TLS verification of ") and "\n" not in message
    assert "CA bundle of vCenter 'noca' in the admin" in message and "insecure box" in message
    assert "GOVC_" not in message


def test_a_vm_destroyed_before_its_page_is_read_leaves_the_cached_list(sim):
    path = sim.create_vm("/dc/vm/gone", "snapgone2", [DiskSpec(None, size_mib=8)])
    try:
        service.list_vms(page_size=1)  # the list, and one record: not this VM's
        WaitForTask(sim.find_vm(path).Destroy_Task())
        assert service.list_vms(q="snapgone2").results == []  # its record cannot be read
        assert service.list_vms(q="snapgone2").count == 0
    finally:
        cache.clear()


@pytest.mark.django_db(transaction=True)
def test_requests_waiting_on_a_read_that_fails_share_its_failure(monkeypatch):
    """Four pages asked at once of a vCenter that accepts and never answers: one read times out
    and the three that waited for it get its line, rather than each timing out in turn."""
    import socket

    accepted: list[socket.socket] = []
    tarpit = socket.create_server(("127.0.0.1", 0))
    tarpit.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(tarpit.accept()[0])
            except TimeoutError:
                pass

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    VCenter.objects.create(
        name="silent", url=f"https://127.0.0.1:{tarpit.getsockname()[1]}/sdk", username="u"
    )
    monkeypatch.setenv("HYPERSDK_VCENTER_CONNECT_TIMEOUT", "1")
    start = threading.Barrier(4)

    def read() -> str:
        start.wait()
        try:
            service.list_vms(vcenter="silent")
        except VCenterConnectionError as exc:
            return str(exc)
        return "answered"

    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: read(), range(4)))
    finally:
        stop.set()
        acceptor.join()
        tarpit.close()
        for connection in accepted:
            connection.close()
    assert len(set(answers)) == 1 and "no answer within 1 s" in answers[0], answers
    assert len(accepted) == 1  # one read, shared
