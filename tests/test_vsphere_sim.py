"""pyvmomi against HyperSDK's vSphere test server (tests/vsphere_sim).

Real SOAP over verified TLS; no mocks.
"""

from __future__ import annotations

import hashlib
import ssl
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from tests.conftest import govc_environment, start_simulator
from tests.vsphere_sim.harness import DiskSpec, NicSpec, escape_name, make_stream_vmdk

pytestmark = pytest.mark.vsphere

SEEDED_VM = "/dc/vm/prod/web01"
OVF_NS = "{http://schemas.dmtf.org/ovf/envelope/1}"
FEATURES = "/dc/vm/features"
LONG_NAME = "виртуальная машина " * 4 + "сервер-01"[:4]  # 80 characters of Cyrillic


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = start_simulator(tmp_path_factory.mktemp("vsphere-sim"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def si(sim):
    si = sim.service_instance()
    yield si
    Disconnect(si)


@pytest.fixture(scope="module")
def seeded(sim, tmp_path_factory):
    """web01 with two disks holding known streamOptimized VMDKs."""
    d = tmp_path_factory.mktemp("images")
    images = [make_stream_vmdk(d / "disk0.vmdk", 3), make_stream_vmdk(d / "disk1.vmdk", 2)]
    sim.seed_disks(SEEDED_VM, images)
    return images


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get(sim, url, **kw):
    # verify= per request: REQUESTS_CA_BUNDLE would override Session.verify.
    return requests.get(url, verify=str(sim.ca_file), timeout=30, **kw)


def export(sim, si, path=SEEDED_VM):
    lease = sim.find_vm(path, si).ExportVm()
    assert sim.wait_lease(lease) == "ready"
    return lease


# ---- session and inventory ----


def test_login_and_wrong_password(sim, si):
    assert si.content.about.apiVersion == "7.0.0.0"
    assert si.content.sessionManager.currentSession.userName == sim.username
    host, port = sim.host.rsplit(":", 1)
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(host=host, port=int(port), user=sim.username, pwd="wrong", sslContext=sim.ssl_context())


def test_tls_is_verified_against_ca_file(sim):
    import socket

    host, port = sim.host.rsplit(":", 1)
    for name in ("127.0.0.1", "localhost"):
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with sim.ssl_context().wrap_socket(raw, server_hostname=name) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # Without our CA the certificate is refused.
    no_ca = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, trusts nothing
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            no_ca.wrap_socket(raw, server_hostname="127.0.0.1")


def test_user_guide_inventory(si):
    index = si.content.searchIndex
    vms = {
        p: index.FindByInventoryPath(p)
        for p in (
            "/dc/vm/prod/web01",
            "/dc/vm/prod/web02",
            "/dc/vm/prod/app01",
            "/dc/vm/prod/db01",
            "/dc/vm/dev/app01",
        )
    }
    assert all(isinstance(vm, vim.VirtualMachine) for vm in vms.values())
    assert vms["/dc/vm/prod/app01"] != vms["/dc/vm/dev/app01"]
    assert vms["/dc/vm/prod/app01"].name == "app01"
    assert all(vm.runtime.powerState == "poweredOff" for vm in vms.values())
    assert index.FindByInventoryPath("/dc/vm/prod/nope") is None


def test_unset_property_does_not_drop_connection(sim, si):
    vm = sim.find_vm("/dc/vm/prod/db01", si)
    assert vm.snapshot is None
    assert vm.name == "db01"  # same connection still works


# ---- ExportVm ----


def test_export_powered_on_vm_is_refused(sim, si):
    sim.power_on("/dc/vm/prod/db01")
    try:
        with pytest.raises(vim.fault.InvalidPowerState) as e:
            sim.find_vm("/dc/vm/prod/db01", si).ExportVm()
        assert e.value.existingState == "poweredOn"
        assert e.value.requestedState == "poweredOff"
    finally:
        sim.power_off("/dc/vm/prod/db01")


def test_export_unknown_vm(si):
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vim.VirtualMachine("vm-99999", si._stub).ExportVm()


def test_lease_becomes_ready_with_device_urls(sim, si, seeded):
    lease = sim.find_vm(SEEDED_VM, si).ExportVm()
    assert lease.state == "initializing"
    assert lease.info is None and lease.error is None
    assert sim.wait_lease(lease) == "ready"
    info = lease.info
    assert info.entity == sim.find_vm(SEEDED_VM, si)
    assert info.leaseTimeout == 300
    assert len(info.deviceUrl) == len(seeded)
    der = ssl.PEM_cert_to_DER_cert(sim.ca_file.read_text())
    thumb = ":".join(f"{b:02X}" for b in hashlib.sha1(der).digest())
    assert thumb == sim.thumbprint
    for n, dev in enumerate(info.deviceUrl):
        assert dev.url == f"https://*/nfc/{lease._moId}/disk-{n}.vmdk"
        assert dev.disk is True
        assert dev.targetId == f"disk-{n}.vmdk"
        assert dev.sslThumbprint == thumb
        assert dev.key.startswith(f"/{info.entity._moId}/") and dev.key.endswith(f":{n}")
    assert lease.transferProgress == 0
    lease.HttpNfcLeaseComplete()


def test_download_range_and_head(sim, si, seeded):
    lease = export(sim, si)
    try:
        for dev, image in zip(lease.info.deviceUrl, seeded, strict=True):
            want = image.read_bytes()
            r = get(sim, sim.absolute_url(dev.url))
            assert r.status_code == 200
            assert sha256(r.content) == sha256(want)

        url = sim.absolute_url(lease.info.deviceUrl[0].url)
        want = seeded[0].read_bytes()
        r = get(sim, url, headers={"Range": "bytes=100-1123"})
        assert r.status_code == 206
        assert r.headers["Content-Range"] == f"bytes 100-1123/{len(want)}"
        assert r.content == want[100:1124]

        r = requests.head(url, verify=str(sim.ca_file), timeout=30)
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == len(want)

        assert get(sim, url.replace("disk-0", "disk-9")).status_code == 404
        report = sim.lease_report(lease)
        assert report["bytes_served"] >= sum(p.stat().st_size for p in seeded)
    finally:
        lease.HttpNfcLeaseComplete()


def test_manifest(sim, si, seeded):
    lease = export(sim, si)
    try:
        manifest = lease.HttpNfcLeaseGetManifest()
        assert [m.key for m in manifest] == [d.key for d in lease.info.deviceUrl]
        for entry, image in zip(manifest, seeded, strict=True):
            data = image.read_bytes()
            assert entry.sha1 == hashlib.sha1(data).hexdigest()
            assert entry.size == len(data)
            assert entry.disk is True
    finally:
        lease.HttpNfcLeaseAbort()


def test_progress(sim, si, seeded):
    lease = export(sim, si)
    with pytest.raises(vmodl.fault.InvalidArgument):
        lease.HttpNfcLeaseProgress(101)
    with pytest.raises(vmodl.fault.InvalidArgument):
        lease.HttpNfcLeaseProgress(-1)
    lease.HttpNfcLeaseProgress(42)
    assert lease.transferProgress == 42
    report = sim.lease_report(lease)
    assert report["progress"] == 42 and report["progress_calls"] == 1
    assert report["progress_history"] == [42]
    lease.HttpNfcLeaseComplete()


def test_complete(sim, si, seeded):
    lease = export(sim, si)
    url = sim.absolute_url(lease.info.deviceUrl[0].url)
    lease.HttpNfcLeaseComplete()
    assert lease.state == "done"
    assert get(sim, url).status_code == 404
    with pytest.raises(vim.fault.InvalidState):
        lease.HttpNfcLeaseProgress(50)
    with pytest.raises(vim.fault.InvalidState):
        lease.HttpNfcLeaseComplete()
    report = sim.lease_report(lease)
    assert report["completed"] and not report["aborted"] and report["state"] == "done"


def test_abort(sim, si, seeded):
    lease = export(sim, si)
    url = sim.absolute_url(lease.info.deviceUrl[0].url)
    lease.HttpNfcLeaseAbort()
    assert lease.state == "error"
    assert isinstance(lease.error, vmodl.fault.RequestCanceled)
    assert get(sim, url).status_code == 404
    with pytest.raises(vim.fault.InvalidState):
        lease.HttpNfcLeaseComplete()
    report = sim.lease_report(lease)
    assert report["aborted"] and not report["completed"] and report["error"] == "RequestCanceled"


def test_lease_timeout(tmp_path, seeded):
    # The simulator's lease clock is moved on instead of slept through: no margin to miss.
    sim = start_simulator(tmp_path, lease_timeout=60)
    try:
        si = sim.service_instance()
        lease = export(sim, si, "/dc/vm/prod/app01")
        assert lease.info.leaseTimeout == 60
        url = sim.absolute_url(lease.info.deviceUrl[0].url)
        # Progress keeps it alive past the timeout: 4 reports 40 s apart span 160 s...
        for _ in range(4):
            sim.advance_clock(40)
            lease.HttpNfcLeaseProgress(10)
        assert lease.state == "ready"
        assert get(sim, url).status_code == 200
        # ...59 s of silence is within it...
        sim.advance_clock(59)
        assert lease.state == "ready"
        # ...and a second more is not.
        sim.advance_clock(1.5)
        assert lease.state == "error"
        assert isinstance(lease.error, vim.fault.Timedout)
        assert get(sim, url).status_code == 404
        report = sim.lease_report(lease)
        assert report["timed_out"] and report["progress_calls"] == 4
        Disconnect(si)
    finally:
        sim.stop()


def test_create_descriptor(sim, si, seeded):
    vm = sim.find_vm(SEEDED_VM, si)
    lease = export(sim, si)
    try:
        files = [
            vim.OvfManager.OvfFile(deviceId=d.key, path=f"web01-disk{n}.vmdk", size=1000 + n)
            for n, d in enumerate(lease.info.deviceUrl)
        ]
    finally:
        lease.HttpNfcLeaseAbort()
    cdp = vim.OvfManager.CreateDescriptorParams(name="web01", ovfFiles=files)
    result = si.content.ovfManager.CreateDescriptor(obj=vm, cdp=cdp)
    root = ET.fromstring(result.ovfDescriptor)
    assert root.tag == f"{OVF_NS}Envelope"
    refs = root.findall(f"{OVF_NS}References/{OVF_NS}File")
    assert [(f.get(f"{OVF_NS}href"), f.get(f"{OVF_NS}size")) for f in refs] == [
        (f.path, str(f.size)) for f in files
    ]
    disks = root.findall(f"{OVF_NS}DiskSection/{OVF_NS}Disk")
    vm_disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    assert [int(d.get(f"{OVF_NS}capacity")) for d in disks] == [d.capacityInKB * 1024 for d in vm_disks]
    system = root.find(f"{OVF_NS}VirtualSystem")
    assert system.find(f"{OVF_NS}Name").text == "web01"
    rasd = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}"
    items = system.findall(f"{OVF_NS}VirtualHardwareSection/{OVF_NS}Item")
    by_type = {}
    for item in items:
        by_type.setdefault(item.find(f"{rasd}ResourceType").text, []).append(item)
    assert by_type["3"][0].find(f"{rasd}VirtualQuantity").text == str(vm.config.hardware.numCPU)
    assert by_type["4"][0].find(f"{rasd}VirtualQuantity").text == str(vm.config.hardware.memoryMB)
    assert len(by_type["17"]) == len(vm_disks)


def test_create_descriptor_refuses_a_file_whose_device_id_fits_no_device(sim, si, seeded):
    """vCenter refuses it; matching it by position would let a wrong device id pass every test."""
    vm = sim.find_vm(SEEDED_VM, si)
    lease = export(sim, si)
    try:
        keys = [d.key for d in lease.info.deviceUrl]
    finally:
        lease.HttpNfcLeaseAbort()
    for device_id in ("/vm-0/VirtualLsiLogicController9:9", keys[0] + "0", ""):
        cdp = vim.OvfManager.CreateDescriptorParams(
            name="web01",
            ovfFiles=[vim.OvfManager.OvfFile(deviceId=device_id, path="web01-disk1.vmdk", size=1)],
        )
        with pytest.raises(vmodl.fault.InvalidArgument) as refused:
            si.content.ovfManager.CreateDescriptor(obj=vm, cdp=cdp)
        assert refused.value.invalidProperty == "cdp.ovfFiles[0].deviceId"
    twice = [vim.OvfManager.OvfFile(deviceId=keys[0], path=f"d{n}.vmdk", size=1) for n in range(2)]
    with pytest.raises(vmodl.fault.InvalidArgument):
        si.content.ovfManager.CreateDescriptor(
            obj=vm, cdp=vim.OvfManager.CreateDescriptorParams(name="web01", ovfFiles=twice)
        )


def test_create_descriptor_unknown_vm(si):
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        si.content.ovfManager.CreateDescriptor(
            obj=vim.VirtualMachine("vm-99999", si._stub), cdp=vim.OvfManager.CreateDescriptorParams()
        )


def test_nfc_rate_throttles(tmp_path, seeded):
    sim = start_simulator(tmp_path, nfc_rate=1024 * 1024)  # 1 MiB/s
    try:
        vmdk = make_stream_vmdk(tmp_path / "small.vmdk", 1)
        sim.seed_disks("/dc/vm/dev/app01", [vmdk])
        lease, url = sim.nfc_url("/dc/vm/dev/app01")
        size = vmdk.stat().st_size
        t0 = time.monotonic()
        r = get(sim, url)
        elapsed = time.monotonic() - t0
        assert r.content == vmdk.read_bytes()
        assert elapsed >= 0.8 * size / (1024 * 1024)
        lease.HttpNfcLeaseComplete()

        # Aborting the lease cuts a transfer in flight.
        lease, url = sim.nfc_url("/dc/vm/dev/app01")
        got = 0
        with requests.get(url, verify=str(sim.ca_file), stream=True, timeout=30) as r:
            assert r.status_code == 200
            try:
                for chunk in r.iter_content(64 * 1024):
                    got += len(chunk)
                    if got >= 128 * 1024 and lease.state == "ready":
                        lease.HttpNfcLeaseAbort()
            except requests.exceptions.RequestException:
                pass
        assert got < size
        assert sim.lease_report(lease)["aborted"]
    finally:
        sim.stop()


def test_a_session_dropped_after_log_in_is_one_line_not_a_traceback(tmp_path):
    from exports.pipeline.connect import vsphere_session
    from exports.pipeline.errors import VCenterConnectionError
    from exports.pipeline.inventory import find_vm
    from tests.conftest import start_simulator
    from tests.test_export_e2e import target_of

    sim = start_simulator(tmp_path / "vsphere")
    try:
        with pytest.raises(
            VCenterConnectionError, match=r"^lost the connection to vCenter 127\.0\.0\.1:\d+: "
        ):
            with vsphere_session(target_of(sim)) as service_instance:
                sim.stop()  # vCenter goes away between two calls of one session
                find_vm(service_instance, "/dc/vm/prod/app01")
    finally:
        sim.stop()


def test_a_malformed_govc_url_is_one_line():
    from exports.pipeline.connect import VCenterTarget
    from exports.pipeline.errors import VCenterConnectionError

    with pytest.raises(VCenterConnectionError, match="^GOVC_URL is not a URL: "):
        VCenterTarget.from_env({"GOVC_URL": "https://[::1", "GOVC_USERNAME": "u"})


# ---- what an inventory and a preflight read (shapes as vCenter reports them) ----


def retrieve_all(si, props: list[str], *, max_objects: int) -> tuple[list, int]:
    """Every VM's ``props`` in one paged PropertyCollector retrieval over a ContainerView:
    (object contents, number of pages)."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[
            pc.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    pc.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
                ],
            )
        ],
        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=props)],
    )
    result = content.propertyCollector.RetrievePropertiesEx(
        [spec], pc.RetrieveOptions(maxObjects=max_objects)
    )
    objects, pages = list(result.objects), 1
    while result.token:
        result = content.propertyCollector.ContinueRetrievePropertiesEx(result.token)
        objects += result.objects
        pages += 1
    view.DestroyView()
    return objects, pages


def props_of(obj) -> dict:
    return {p.name: p.val for p in obj.propSet}


def devices_of(sim, vm_path: str, kind) -> list:
    return [d for d in sim.find_vm(vm_path).config.hardware.device if isinstance(d, kind)]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return make_stream_vmdk(tmp_path_factory.mktemp("feature-images") / "small.vmdk", 1)


@pytest.fixture(scope="module")
def dmz(sim):
    sim.add_network("DMZ")
    return "DMZ"


@pytest.fixture(scope="module")
def nfs(sim):
    sim.add_datastore("nfs01")
    return "nfs01"


@pytest.fixture(scope="module")
def disks_vm(sim, image, nfs):
    """One flat disk, both independent modes, both RDM modes and a disk on the NFS datastore."""
    return sim.create_vm(
        FEATURES,
        "disks",
        [
            DiskSpec(image),
            DiskSpec(image, mode="independent_persistent"),
            DiskSpec(None, mode="independent_nonpersistent"),
            DiskSpec(None, rdm="physical"),
            DiskSpec(None, rdm="virtual"),
            DiskSpec(image, datastore=nfs),
        ],
    )


def test_a_paged_retrieval_answers_max_objects_per_page_with_a_token(sim, si):
    objects, pages = retrieve_all(si, ["name"], max_objects=2)
    one_page, single = retrieve_all(si, ["name"], max_objects=1000)
    assert single == 1
    assert [o.obj for o in objects] == [o.obj for o in one_page]
    assert pages == -(-len(one_page) // 2)


def test_continue_after_the_last_page_and_cancel_refuse_the_token(si):
    content = si.RetrieveContent()
    pc = vmodl.query.PropertyCollector
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = pc.FilterSpec(
        objectSet=[
            pc.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[pc.TraversalSpec(name="v", type=vim.view.ContainerView, path="view", skip=False)],
            )
        ],
        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])],
    )
    first = content.propertyCollector.RetrievePropertiesEx([spec], pc.RetrieveOptions(maxObjects=1))
    assert len(first.objects) == 1 and first.token
    content.propertyCollector.CancelRetrievePropertiesEx(first.token)
    with pytest.raises(vmodl.fault.InvalidArgument):
        content.propertyCollector.ContinueRetrievePropertiesEx(first.token)
    view.DestroyView()


def test_extra_vms_make_a_5000_vm_fleet_that_pages_through_a_container_view(tmp_path):
    big = start_simulator(tmp_path, extra_vms=5000)
    try:
        si = big.service_instance()
        objects, pages = retrieve_all(
            si,
            ["name", "parent", "runtime.powerState", "config.guestId", "config.template"],
            max_objects=1000,
        )
        assert len(objects) == 5005 and pages == 6
        assert len({o.obj._moId for o in objects}) == 5005
        rows = [props_of(o) for o in objects]
        states = {r["runtime.powerState"] for r in rows}
        assert states == {"poweredOn", "poweredOff", "suspended"}
        assert {r["config.guestId"] for r in rows} >= {"debian11_64Guest", "windows2019srv_64Guest"}
        assert sum(1 for r in rows if r.get("config.template")) == 50
        index = si.content.searchIndex
        vm = index.FindByInventoryPath("/dc/vm/fleet/db/db-00001")
        assert isinstance(vm, vim.VirtualMachine)
        assert vm.parent.name == "db" and vm.parent.parent.name == "fleet"
        assert index.FindByInventoryPath("/dc/vm/prod/web01") is not None  # the user guide's VMs stay
        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        nics = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert len(disks) == 2 and len(nics) == 1
        assert [d.deviceInfo.label for d in disks] == ["Hard disk 1", "Hard disk 2"]
        assert nics[0].backing.deviceName == "VM Network"
        Disconnect(si)
    finally:
        big.stop()


def test_a_fresh_server_holds_exactly_the_user_guides_five_vms(tmp_path):
    fresh = start_simulator(tmp_path)
    try:
        si = fresh.service_instance()
        objects, _ = retrieve_all(si, ["name"], max_objects=1000)
        assert sorted(props_of(o)["name"] for o in objects) == ["app01", "app01", "db01", "web01", "web02"]
        Disconnect(si)
    finally:
        fresh.stop()


def test_nics_read_back_with_network_mac_and_adapter(sim, dmz):
    path = sim.create_vm(
        FEATURES,
        "nics",
        [],
        nics=[
            NicSpec("VM Network", mac="00:50:56:aa:bb:01", adapter="e1000e"),
            NicSpec(dmz, adapter="vmxnet3", connected=False),
        ],
    )
    nics = devices_of(sim, path, vim.vm.device.VirtualEthernetCard)
    assert [type(n) for n in nics] == [vim.vm.device.VirtualE1000e, vim.vm.device.VirtualVmxnet3]
    assert [n.backing.deviceName for n in nics] == ["VM Network", "DMZ"]
    assert [n.deviceInfo.label for n in nics] == ["Network adapter 1", "Network adapter 2"]
    assert nics[0].macAddress == "00:50:56:aa:bb:01" and nics[0].addressType == "manual"
    assert nics[1].macAddress and nics[1].addressType == "generated"
    assert [n.connectable.startConnected for n in nics] == [True, False]
    assert [n.connectable.connected for n in nics] == [False, False]  # powered off
    vm = sim.find_vm(path)
    assert sorted(n.name for n in vm.network) == ["DMZ", "VM Network"]
    with pytest.raises(ValueError, match="no network 'Nowhere'"):
        sim.create_vm(FEATURES, "lost", [], nics=[NicSpec("Nowhere")])


def test_independent_and_rdm_disks_read_back_as_vcenter_reports_them(sim, disks_vm, nfs):
    disks = devices_of(sim, disks_vm, vim.vm.device.VirtualDisk)
    assert [d.deviceInfo.label for d in disks] == [f"Hard disk {n}" for n in range(1, 7)]
    assert [d.backing.diskMode for d in disks] == [
        "persistent",
        "independent_persistent",
        "independent_nonpersistent",
        "independent_persistent",  # a physical RDM is always independent
        "persistent",
        "persistent",
    ]
    rdm = vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo
    assert [type(d.backing) is rdm for d in disks] == [False, False, False, True, True, False]
    assert [disks[3].backing.compatibilityMode, disks[4].backing.compatibilityMode] == [
        "physicalMode",
        "virtualMode",
    ]
    assert disks[3].backing.deviceName.startswith("vml.") and disks[3].backing.lunUuid
    assert disks[3].backing.deviceName != disks[4].backing.deviceName
    assert disks[5].backing.fileName.startswith(f"[{nfs}] ")
    assert disks[5].backing.datastore.name == nfs


def test_an_rdm_survives_a_reconfiguration_of_its_vm(sim, disks_vm):
    vm = sim.find_vm(disks_vm)
    WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(memoryMB=512)))
    disks = devices_of(sim, disks_vm, vim.vm.device.VirtualDisk)
    assert vm.config.hardware.memoryMB == 512
    assert disks[3].backing.compatibilityMode == "physicalMode"


def test_export_lease_leaves_out_rdm_and_independent_disks(sim, si, disks_vm):
    vm = sim.find_vm(disks_vm, si)
    disks = devices_of(sim, disks_vm, vim.vm.device.VirtualDisk)
    lease = vm.ExportVm()
    try:
        assert sim.wait_lease(lease) == "ready"
        urls = [d for d in lease.info.deviceUrl if d.disk]
        # Only Hard disk 1 (flat, persistent) and Hard disk 6 (on the NFS datastore) are served.
        assert len(urls) == 2
        assert [u.key.rsplit(":", 1)[1] for u in urls] == [str(disks[0].unitNumber), str(disks[5].unitNumber)]
    finally:
        lease.HttpNfcLeaseAbort()


def test_a_pipeline_export_of_a_vm_with_rdm_and_independent_disks_downloads_only_the_others(
    sim, disks_vm, image, tmp_path
):
    from exports.pipeline.connect import VCenterTarget
    from exports.pipeline.options import ExportOptions
    from exports.pipeline.preflight import Preflight
    from exports.pipeline.run import STEPS, export_vm

    out = tmp_path / "out"
    # The lease's own behaviour: the export's preflight refuses such a VM before any lease
    # (independent-disk, rdm-disk: tests/test_preflight.py), so it is left out here.
    export_vm(
        ExportOptions(vm_path=disks_vm, output_dir=out, manifest=True),
        VCenterTarget.from_env(govc_environment(sim)),
        steps=[step for step in STEPS if not isinstance(step, Preflight)],
    )
    vmdks = sorted(out.glob("*.vmdk"))
    assert len(vmdks) == 2
    assert all(v.read_bytes() == image.read_bytes() for v in vmdks)
    lease = sim.leases()[-1]
    assert lease["vm_name"] == "disks" and lease["files"] == ["disk-0.vmdk", "disk-1.vmdk"]


def test_an_inaccessible_datastore_reads_back_and_fails_the_export_lease(sim, si, disks_vm, nfs):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
    ds = next(d for d in view.view if d.name == nfs)
    assert ds.summary.accessible is True and ds.summary.type == "NFS"
    sim.set_datastore_accessible(nfs, False)
    try:
        assert ds.summary.accessible is False
        assert ds.overallStatus == "red"
        assert sim.find_vm(disks_vm, si).runtime.connectionState == "connected"  # only a disk is there
        lease = sim.find_vm(disks_vm, si).ExportVm()
        assert sim.wait_lease(lease) == "error"
        assert isinstance(lease.error, vim.fault.FileNotFound)
        assert nfs in lease.error.file
    finally:
        sim.set_datastore_accessible(nfs, True)
    assert ds.summary.accessible is True and ds.overallStatus == "green"
    with pytest.raises(requests.HTTPError, match="404"):
        sim.set_datastore_accessible("nowhere", False)


def test_connected_cdrom_iso_and_floppy_read_back(sim, image):
    iso, flp = f"[{sim.datastore}] iso/debian-11.iso", f"[{sim.datastore}] floppy/drivers.flp"
    on = sim.create_vm(FEATURES, "drives-on", [DiskSpec(image)], cdrom_iso=iso, floppy_image=flp)
    off = sim.create_vm(
        FEATURES,
        "drives-off",
        [DiskSpec(image)],
        cdrom_iso=iso,
        floppy_image=flp,
        cdrom_connected=False,
        floppy_connected=False,
    )
    for path, connected in ((on, True), (off, False)):
        (cdrom,) = devices_of(sim, path, vim.vm.device.VirtualCdrom)
        (floppy,) = devices_of(sim, path, vim.vm.device.VirtualFloppy)
        assert isinstance(cdrom.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo)
        assert cdrom.backing.fileName == iso and cdrom.deviceInfo.label == "CD/DVD drive 1"
        assert floppy.backing.fileName == flp and floppy.deviceInfo.label == "Floppy drive 1"
        for drive in (cdrom, floppy):
            assert drive.connectable.startConnected is connected
            assert drive.connectable.connected is False  # nothing is connected in a powered-off VM
    # Powered on, what starts connected is connected; powered off again, nothing is.
    for state, want in (("on", True), ("off", False)):
        (sim.power_on if state == "on" else sim.power_off)(on)
        for kind in (vim.vm.device.VirtualCdrom, vim.vm.device.VirtualFloppy):
            (drive,) = devices_of(sim, on, kind)
            assert drive.connectable.connected is want


def test_cbt_template_cpus_cores_and_memory_read_back(sim, si, image):
    path = sim.create_vm(
        FEATURES,
        "golden",
        [DiskSpec(image)],
        cbt=True,
        template=True,
        cpus=8,
        cores_per_socket=4,
        memory_mb=4096,
    )
    vm = sim.find_vm(path)
    assert vm.config.changeTrackingEnabled is True
    assert vm.config.template is True and vm.summary.config.template is True
    assert (vm.config.hardware.numCPU, vm.config.hardware.numCoresPerSocket) == (8, 4)
    assert vm.config.hardware.memoryMB == 4096 and vm.summary.config.memorySizeMB == 4096
    plain = sim.find_vm(sim.create_vm(FEATURES, "plain", [DiskSpec(image)]))
    assert not plain.config.changeTrackingEnabled and plain.config.template is False


def test_an_encrypted_vm_reports_its_key(sim, image):
    path = sim.create_vm(FEATURES, "secret", [DiskSpec(image)], encrypted=True)
    vm = sim.find_vm(path)
    assert vm.config.keyId.keyId and vm.config.keyId.providerId.id == "hypersdk-kms"
    (disk,) = devices_of(sim, path, vim.vm.device.VirtualDisk)
    assert disk.backing.keyId.keyId == vm.config.keyId.keyId
    assert sim.find_vm(sim.create_vm(FEATURES, "clear", [DiskSpec(image)])).config.keyId is None


def test_guest_os_configured_and_detected_by_tools(sim, image):
    running = sim.find_vm(
        sim.create_vm(
            FEATURES, "deb11", [DiskSpec(image)], guest_id="debian11_64Guest", power_on=True, tools="running"
        )
    )
    assert running.config.guestId == "debian11_64Guest"
    assert running.config.guestFullName == "Debian GNU/Linux 11 (64-bit)"
    assert running.guest.guestId == "debian11_64Guest"
    assert running.guest.guestFullName == "Debian GNU/Linux 11 (64-bit)"
    assert running.guest.toolsRunningStatus == "guestToolsRunning"
    assert running.guest.toolsStatus == "toolsOk"
    assert running.summary.guest.toolsRunningStatus == "guestToolsRunning"

    stopped_path = sim.create_vm(
        FEATURES, "win2019", [DiskSpec(image)], guest_id="windows2019srv_64Guest", tools="not-running"
    )
    stopped = sim.find_vm(stopped_path)
    assert stopped.config.guestFullName == "Microsoft Windows Server 2019 (64-bit)"
    assert stopped.guest.toolsRunningStatus == "guestToolsNotRunning"
    assert stopped.guest.toolsStatus == "toolsNotRunning"
    assert not stopped.guest.guestFullName

    guide = sim.find_vm("/dc/vm/prod/web01")  # the user guide's VMs too: vcsim said "otherGuest"
    assert (guide.config.guestId, guide.config.guestFullName) == ("otherGuest", "Other (32-bit)")

    bare = sim.find_vm(sim.create_vm(FEATURES, "bare", [DiskSpec(image)]))
    assert bare.guest.toolsStatus == "toolsNotInstalled"
    assert bare.guest.toolsRunningStatus == "guestToolsNotRunning"

    with pytest.raises(requests.HTTPError, match="409"):
        sim.set_guest(stopped_path, "running")
    sim.power_on(stopped_path)
    sim.set_guest(
        stopped_path, "running", full_name="Microsoft Windows Server 2019 Datacenter", ip="10.0.0.9"
    )
    assert stopped.guest.guestFullName == "Microsoft Windows Server 2019 Datacenter"
    assert stopped.guest.ipAddress == "10.0.0.9"
    sim.power_off(stopped_path)


def test_names_with_a_slash_are_escaped_and_long_non_latin_names_kept(sim, image):
    assert len(LONG_NAME) == 80
    slashed = sim.create_vm(FEATURES, "backup/daily 100%", [DiskSpec(image)])
    assert slashed == f"{FEATURES}/backup%2fdaily 100%25"
    assert escape_name("backup/daily 100%") == "backup%2fdaily 100%25"
    vm = sim.find_vm(slashed)
    assert vm.name == "backup%2fdaily 100%25"  # vCenter answers the escaped name
    long_path = sim.create_vm(FEATURES, LONG_NAME, [DiskSpec(image)])
    assert sim.find_vm(long_path).name == LONG_NAME
    # Folders and renames are escaped alike.
    folder = sim.find_vm(long_path).parent.CreateFolder("2026/12")
    assert folder.name == "2026%2f12"
    WaitForTask(vm.Rename_Task("nightly\\full"))
    assert vm.name == "nightly%5cfull"
    assert sim.find_vm(f"{FEATURES}/nightly%5cfull") == vm
    # A name that is already escaped stays as it is.
    assert sim.find_vm(sim.create_vm(FEATURES, "a%2fb", [DiskSpec(image)])).name == "a%2fb"


def test_privileges_answer_for_the_user_and_a_denied_export_is_refused(sim, si):
    vm = sim.find_vm("/dc/vm/dev/app01", si)
    other = sim.find_vm("/dc/vm/prod/web02", si)
    auth = si.content.authorizationManager
    session = si.content.sessionManager.currentSession.key

    def granted(entity) -> dict:
        (answer,) = auth.HasPrivilegeOnEntities(
            entity=[entity], sessionId=session, privId=["VApp.Export", "System.View"]
        )
        return {a.privId: a.isGranted for a in answer.privAvailability}

    assert granted(vm) == {"VApp.Export": True, "System.View": True}
    sim.deny_privilege("VApp.Export", entity=vm._moId)
    try:
        assert granted(vm) == {"VApp.Export": False, "System.View": True}
        assert granted(other) == {"VApp.Export": True, "System.View": True}
        assert auth.HasPrivilegeOnEntity(entity=vm, sessionId=session, privId=["VApp.Export"]) == [False]
        (fetched,) = auth.FetchUserPrivilegeOnEntities(entities=[vm], userName=sim.username)
        assert "VApp.Export" not in fetched.privileges and "System.View" in fetched.privileges
        (user,) = auth.HasUserPrivilegeOnEntities(
            entities=[vm], userName=sim.username, privId=["VApp.Export"]
        )
        assert user.privAvailability[0].isGranted is False
        with pytest.raises(vim.fault.NoPermission) as refused:
            vm.ExportVm()
        assert refused.value.privilegeId == "VApp.Export"
        sim.deny_privilege("VApp.Export")
        assert granted(other)["VApp.Export"] is False
    finally:
        sim.reset_privileges()
    assert granted(vm)["VApp.Export"] is True


def test_control_endpoints_answer_bad_input_with_4xx(sim):
    for action, params in (
        ("guest", {"vm": "vm-99999", "tools": "running"}),
        ("guest", {"vm": sim.find_vm("/dc/vm/dev/app01")._moId, "tools": "sometimes"}),
        ("datastore", {"name": sim.datastore, "accessible": "maybe"}),
        ("encrypt", {"vm": "vm-99999"}),
        ("rdm", {"vm": sim.find_vm("/dc/vm/dev/app01")._moId, "disk": "1", "mode": "physical"}),
        ("privileges", {}),
    ):
        with pytest.raises(requests.HTTPError) as refused:
            sim._control("POST", action, **params)
        assert 400 <= refused.value.response.status_code < 500, (action, params)
