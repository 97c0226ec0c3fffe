"""Lease URLs → the VM's own devices, on real pyvmomi objects shaped like a vCenter 7 lease.

The simulator cannot serve everything a real lease holds (an ISO image offered as a non-disk
URL, a second SCSI bus, an explicit boot order), so this is tested here at the lowest real
level: pyvmomi's own HttpNfcLease and VirtualMachine managed objects over a stub that answers
their property reads with real ``vim`` data objects, read by the pipeline's real ExportLease.
"""

from __future__ import annotations

import pytest
from pyVmomi import vim

from exports.pipeline.devices import disk_devices, firmware_facts, left_out_devices
from exports.pipeline.errors import LeaseError
from exports.pipeline.lease import ExportLease
from exports.pipeline.names import MAX_STEM_BYTES, file_stem
from exports.pipeline.progress import NullReporter

GIB = 1 << 30


class PropertyStub:
    """Answers managed-object property reads as vCenter would, from fixed data objects."""

    def __init__(self, **values: object) -> None:
        self.values = values

    def InvokeAccessor(self, mo, info):  # noqa: N802 - pyvmomi's stub interface
        return self.values[info.name]


def disk(key: int, controller: int, unit: int, capacity: int, *, thin: bool = True, label: str = ""):
    return vim.vm.device.VirtualDisk(
        key=key,
        controllerKey=controller,
        unitNumber=unit,
        capacityInKB=capacity // 1024,
        capacityInBytes=capacity,
        deviceInfo=vim.Description(label=label or f"Hard disk {key - 2000}", summary=""),
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=f"[ds{key % 2}] vm/vm_{key}.vmdk",
            diskMode="persistent",
            thinProvisioned=thin,
            eagerlyScrub=not thin,
        ),
    )


def config(boot_disk: int | None = None, firmware: str = "efi") -> vim.vm.ConfigInfo:
    devices = [
        vim.vm.device.VirtualIDEController(key=200, busNumber=0),
        vim.vm.device.VirtualIDEController(key=201, busNumber=1),
        vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=0),
        vim.vm.device.VirtualLsiLogicController(key=1001, busNumber=1),
        vim.vm.device.VirtualAHCIController(key=15000, busNumber=0),
        vim.vm.device.VirtualNVMEController(key=31000, busNumber=0),
        disk(2000, 1000, 0, 64 << 20, thin=False),
        disk(2001, 1000, 1, 32 << 20),
        disk(2002, 1001, 0, 9 * GIB),  # unit 0 again, but on SCSI bus 1
        disk(2003, 15000, 0, 16 << 20),
        disk(2004, 31000, 0, 8 << 20),
        disk(2005, 200, 0, 4 << 20),
        vim.vm.device.VirtualCdrom(
            key=3000,
            controllerKey=201,
            unitNumber=0,
            deviceInfo=vim.Description(label="CD/DVD drive 1", summary=""),
            backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName="[ds0] iso/installer.iso"),
        ),
        vim.vm.device.VirtualFloppy(
            key=8000,
            deviceInfo=vim.Description(label="Floppy drive 1", summary=""),
            backing=vim.vm.device.VirtualFloppy.RemoteDeviceBackingInfo(deviceName=""),
        ),
    ]
    boot = vim.vm.BootOptions(efiSecureBootEnabled=True)
    if boot_disk is not None:
        boot.bootOrder = [vim.vm.BootOptions.BootableDiskDevice(deviceKey=boot_disk)]
    return vim.vm.ConfigInfo(
        firmware=firmware, bootOptions=boot, hardware=vim.vm.VirtualHardware(device=devices)
    )


def device_url(key: str, target: str, *, is_disk: bool = True) -> vim.HttpNfcLease.DeviceUrl:
    return vim.HttpNfcLease.DeviceUrl(
        key=key,
        importKey=key,
        url=f"https://*/nfc/52a4-lease/{target}",
        sslThumbprint="AA:BB",
        disk=is_disk,
        targetId=target,
    )


DISK_KEYS = [
    "/vm-42/ParaVirtualSCSIController0:0",
    "/vm-42/ParaVirtualSCSIController0:1",
    "/vm-42/VirtualLsiLogicController1:0",
    "/vm-42/VirtualAHCIController0:0",
    "/vm-42/VirtualNVMEController0:0",
    "/vm-42/VirtualIDEController0:0",
]


def lease_of(urls: list[vim.HttpNfcLease.DeviceUrl], vm_config: vim.vm.ConfigInfo) -> ExportLease:
    vm = vim.VirtualMachine("vm-42", PropertyStub(config=vm_config))
    info = vim.HttpNfcLease.Info(entity=vm, deviceUrl=urls, leaseTimeout=300, totalDiskCapacityInKB=1)
    return ExportLease(vim.HttpNfcLease("52a4-lease", PropertyStub(info=info)), NullReporter())


def real_lease(vm_config: vim.vm.ConfigInfo | None = None) -> ExportLease:
    urls = [device_url(key, f"disk-{n}.vmdk") for n, key in enumerate(DISK_KEYS)]
    urls.append(device_url("/vm-42/nvram", "vm-42.nvram", is_disk=False))
    urls.append(device_url("/vm-42/3000", "installer.iso", is_disk=False))  # image files: not ours
    return lease_of(urls, vm_config or config())


def test_each_lease_url_gets_its_own_disks_facts():
    sources = real_lease().disks("vc.example:443")
    assert [s.capacity_bytes for s in sources] == [64 << 20, 32 << 20, 9 * GIB, 16 << 20, 8 << 20, 4 << 20]
    assert [s.device.device_key for s in sources] == [2000, 2001, 2002, 2003, 2004, 2005]
    assert [(s.device.bus, s.device.bus_number, s.device.unit_number) for s in sources] == [
        ("scsi", 0, 0),
        ("scsi", 0, 1),
        ("scsi", 1, 0),
        ("sata", 0, 0),
        ("nvme", 0, 0),
        ("ide", 0, 0),
    ]
    assert sources[0].device.provisioning == "thick-eager" and sources[1].device.provisioning == "thin"
    assert [s.device.datastore for s in sources[:2]] == ["ds0", "ds1"]
    assert sources[0].url == "https://vc.example:443/nfc/52a4-lease/disk-0.vmdk"


def test_the_nvram_url_is_found_and_image_files_are_not_downloaded():
    lease = real_lease()
    nvram = lease.nvram("vc.example:443")
    assert nvram is not None and nvram.key == "/vm-42/nvram" and nvram.device is None
    assert all(not s.target_id.endswith((".iso", ".nvram")) for s in lease.disks("vc.example:443"))


def test_a_lease_without_nvram_offers_none():
    lease = lease_of([device_url(DISK_KEYS[0], "disk-0.vmdk")], config(firmware="bios"))
    assert lease.nvram("vc") is None


@pytest.mark.parametrize(
    "key",
    [
        "/vm-42/ParaVirtualSCSIController0:7",  # no disk at that unit
        "/vm-42/VirtualLsiLogicController0:0",  # right unit, wrong controller type
        "/vm-42/ParaVirtualSCSIController1:0",  # right type and unit, wrong bus
        "/vm-42/2000",  # a device key, not an address
    ],
)
def test_a_lease_key_that_fits_no_disk_stops_the_export(key):
    with pytest.raises(LeaseError, match="matches no disk|does not describe"):
        lease_of([device_url(key, "disk-0.vmdk")], config()).disks("vc")


def test_a_disk_named_twice_stops_the_export():
    urls = [device_url(DISK_KEYS[0], "disk-0.vmdk"), device_url(DISK_KEYS[0], "disk-1.vmdk")]
    with pytest.raises(LeaseError, match="twice"):
        lease_of(urls, config()).disks("vc")


def test_boot_order_follows_the_vms_explicit_boot_order():
    devices = disk_devices(config(boot_disk=2003))
    order = {d.device_key: d.boot_order for d in devices}
    assert order[2003] == 0
    assert [order[k] for k in (2000, 2001, 2002, 2004, 2005)] == [1, 2, 3, 4, 5]
    assert [d.boot_order for d in disk_devices(config())] == [0, 1, 2, 3, 4, 5]


def test_firmware_and_secure_boot_come_from_the_vm_config():
    efi = firmware_facts(config())
    assert (efi.firmware, efi.secure_boot) == ("uefi", True)
    bios = firmware_facts(config(firmware="bios"))
    assert (bios.firmware, bios.secure_boot) == ("bios", False)


def test_drives_the_export_leaves_out_are_named():
    warnings = left_out_devices(config())
    assert len(warnings) == 2
    assert "CD/DVD drive 1" in warnings[0] and "[ds0] iso/installer.iso" in warnings[0]
    assert "Floppy drive 1" in warnings[1]


@pytest.mark.parametrize(
    "name",
    ["web01", "ends with a dot.", "backup%2fdaily", "a/b", "仮想マシン名" * 13 + "仮想", "🖥" * 80, ".", ".."],
)
def test_file_stems_fit_every_vm_name_into_a_file_name(name):
    stem = file_stem(name)
    assert len(stem.encode()) <= MAX_STEM_BYTES
    assert "/" not in stem and stem not in (".", "..")
    if len(name.encode()) <= MAX_STEM_BYTES and "/" not in name and name not in (".", ".."):
        assert stem == name
    assert file_stem(name) == stem


def test_long_names_sharing_a_prefix_get_different_stems():
    assert file_stem("名" * 79 + "a") != file_stem("名" * 79 + "b")
