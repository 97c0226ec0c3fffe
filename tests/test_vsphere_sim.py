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
from pyVmomi import vim, vmodl

from tests.conftest import start_simulator
from tests.vsphere_sim.harness import make_stream_vmdk

pytestmark = pytest.mark.vsphere

SEEDED_VM = "/dc/vm/prod/web01"
OVF_NS = "{http://schemas.dmtf.org/ovf/envelope/1}"


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
