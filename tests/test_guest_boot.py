"""A domain that validates can still fail to boot: real guests boot in QEMU from libvirt domains.

The two test guests (``tests/guests/build.py``: Debian's kernel and busybox, BIOS + syslinux and
EFI + systemd-boot's stub) print a marker line naming the image and the firmware they found,
then power off. ``boot_domain`` runs exactly the hardware a domain describes. End to end, each
guest is a VM on the vSphere test server; ``hyperexport -convert -libvirt`` exports it, and the
converted disks boot by the domain it wrote: the BIOS VM on the virtio bus osinfo-db picks for
Debian and on ``-disk-bus scsi``, the EFI VM (two disks and a CD-ROM drive) on ``-disk-bus sata``.
Each boot costs seconds (TCG where KVM is not hardware-backed), so there are few of them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.conftest import govc_environment, start_simulator
from tests.guests.boot import UnmappedDomain, boot_domain, qemu_command
from tests.guests.build import BIOS, EFI, bios_guest, efi_guest, marker
from tests.vsphere_sim.harness import DiskSpec, NicSpec, make_stream_vmdk

FOLDER = "/dc/vm/guest-boot"
HYPEREXPORT = str(Path(sys.executable).parent / "hyperexport")

FIRMWARE = {
    BIOS: "<os>",
    EFI: "<os firmware='efi'>",
}
SECURE_BOOT = "<firmware><feature enabled='{enabled}' name='secure-boot'/></firmware>"


def hand_written_domain(
    path: Path,
    *,
    image: Path,
    bus: str,
    firmware: str,
    secure_boot: bool = False,
    disks_before: str = "",
) -> Path:
    """A domain shaped like the ones ``hyperexport -libvirt`` writes (see PLAN: q35, firmware by
    auto-selection, host CPU with a topology, one raw disk booting first, a NIC, serial
    console, VNC, RNG, guest agent), with ``disks_before`` listed ahead of its disk."""
    target = "vda" if bus == "virtio" else "sda"
    firmware_features = SECURE_BOOT.format(enabled="yes" if secure_boot else "no") if firmware == EFI else ""
    scsi = "<controller type='scsi' model='virtio-scsi'/>" if bus == "scsi" else ""
    path.write_text(
        f"""<domain type='kvm'>
  <name>guest-{firmware}</name>
  <title>test guest ({firmware})</title>
  <uuid>4210a1b2-0c3d-4e5f-8a9b-0c1d2e3f4a5{"b" if firmware == BIOS else "e"}</uuid>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  {FIRMWARE[firmware]}
    <type arch='x86_64' machine='q35'>hvm</type>
    {firmware_features}
  </os>
  <features><acpi/><apic/></features>
  <cpu mode='host-passthrough'><topology sockets='1' dies='1' cores='2' threads='1'/></cpu>
  <devices>
    {scsi}
    {disks_before}
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{image}'/>
      <target dev='{target}' bus='{bus}'/>
      <boot order='1'/>
    </disk>
    <interface type='network'>
      <mac address='00:50:56:01:02:03'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <graphics type='vnc' listen='127.0.0.1'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>
"""
    )
    return path


@pytest.fixture(scope="module")
def guests() -> dict[str, Path]:
    """Both guests, built (once per machine, cached) before any boot is timed."""
    return {BIOS: bios_guest(), EFI: efi_guest()}


def serial_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()]


@pytest.mark.parametrize("firmware", [BIOS, EFI])
def test_the_hand_written_domains_are_libvirt_domains(guests, tmp_path, firmware):
    """The domains the runner's own tests read are ones libvirt takes: its schema, and its test
    driver (no daemon, no KVM) defines them."""
    bus = "virtio" if firmware == BIOS else "sata"
    domain = hand_written_domain(tmp_path / "d.xml", image=guests[firmware], bus=bus, firmware=firmware)
    validated = subprocess.run(["virt-xml-validate", str(domain), "domain"], capture_output=True, text=True)
    assert validated.returncode == 0, validated.stderr
    defined = subprocess.run(
        ["virsh", "-c", "test:///default", "define", str(domain)], capture_output=True, text=True
    )
    assert defined.returncode == 0, defined.stderr


def test_disks_boot_in_the_domains_order_on_their_own_bus(guests, tmp_path):
    """Each disk's bus, target and ``<boot order>`` reach QEMU, whatever order they are listed in."""
    listed_first = f"""<disk type='file' device='disk'>
      <driver name='qemu' type='raw'/><source file='{guests[EFI]}'/>
      <target dev='sdb' bus='scsi'/><boot order='2'/>
    </disk>"""
    domain = hand_written_domain(
        tmp_path / "d.xml", image=guests[BIOS], bus="scsi", firmware=BIOS, disks_before=listed_first
    )
    command = qemu_command(domain, workdir=tmp_path, serial=tmp_path / "serial.log")
    drives = [command[i + 1] for i, arg in enumerate(command) if arg == "-drive"]
    assert drives == [
        f"file={guests[EFI]},format=raw,if=none,id=drive0",
        f"file={guests[BIOS]},format=raw,if=none,id=drive1",
    ]
    devices = [command[i + 1] for i, arg in enumerate(command) if arg == "-device"]
    assert "virtio-scsi-pci,id=scsi0" in devices
    assert "scsi-hd,drive=drive0,bus=scsi0.0,channel=0,scsi-id=0,lun=1,bootindex=2" in devices
    assert "scsi-hd,drive=drive1,bus=scsi0.0,channel=0,scsi-id=0,lun=0,bootindex=1" in devices
    assert "-snapshot" in command  # the exported disks are never written


@pytest.mark.parametrize("secure_boot", [True, False])
def test_efi_firmware_is_the_one_libvirt_picks_for_the_secure_boot_setting(guests, tmp_path, secure_boot):
    domain = hand_written_domain(
        tmp_path / "d.xml", image=guests[EFI], bus="sata", firmware=EFI, secure_boot=secure_boot
    )
    command = qemu_command(domain, workdir=tmp_path, serial=tmp_path / "serial.log")
    code = next(arg for arg in command if arg.startswith("if=pflash,unit=0,"))
    machine = command[command.index("-machine") + 1]
    if secure_boot:
        assert code.endswith("OVMF_CODE_4M.ms.fd") and "smm=on" in machine.split(",")
    else:
        assert code.endswith("OVMF_CODE_4M.fd") and "smm=on" not in machine.split(",")


def test_secure_boot_in_the_domain_reaches_the_firmware(guests, tmp_path):
    """The unsigned EFI guest is refused by an OVMF with secure boot on (so the boots below
    that pass had it off because their domain said so)."""
    domain = hand_written_domain(
        tmp_path / "d.xml", image=guests[EFI], bus="sata", firmware=EFI, secure_boot=True
    )
    output = boot_domain(domain, marker=marker(EFI))
    assert marker(EFI) not in serial_lines(output)
    assert "Access Denied" in output, output[-3000:]


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        (("bus='virtio'", "bus='ide'"), "bus='ide'"),
        (("<disk type='file'", "<disk type='block'"), "type='block'"),
        (("<os firmware='efi'>", "<os firmware='efi'><loader type='rom'>/x.fd</loader>"), "os/loader"),
        (("</devices>", "<sound model='ich9'/></devices>"), "devices/sound"),
        (("<target dev='vda'", "<target dev='vda' tray='open'"), "tray='open'"),
        (
            ("<driver name='qemu' type='raw'/>", "<driver name='qemu' type='raw' cache='none'/>"),
            "cache='none'",
        ),
    ],
)
def test_what_the_runner_cannot_map_is_refused_never_ignored(guests, tmp_path, change, refused):
    domain = hand_written_domain(tmp_path / "d.xml", image=guests[EFI], bus="virtio", firmware=EFI)
    text = domain.read_text()
    assert change[0] in text
    domain.write_text(text.replace(change[0], change[1]))
    with pytest.raises(UnmappedDomain, match=re.escape(refused)):
        qemu_command(domain, workdir=tmp_path, serial=tmp_path / "serial.log")


# End to end: the guests as vSphere VMs, exported and converted by hyperexport, booted by the
# domain it wrote.


@pytest.fixture(scope="module")
def vsphere(tmp_path_factory):
    """A vSphere test server of this module's own: the guests' VMs stay out of the session's,
    whose VM lists other modules check (whichever runs first in the same process)."""
    sim = start_simulator(tmp_path_factory.mktemp("guest-boot-vsphere"))
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def guest_vms(vsphere, guests, tmp_path_factory) -> dict[str, str]:
    """Each guest's disk as a VM with its firmware and a Debian guest OS: the BIOS one on a
    paravirtual SCSI controller with a NIC; the EFI one (secure boot off: the guest is
    unsigned) on SATA with a blank second disk and an ISO in a CD-ROM drive."""
    seeds = tmp_path_factory.mktemp("guest-seeds")
    vmdks = {
        variant: make_stream_vmdk(seeds / f"{variant}.vmdk", 0, seed_raw=guests[variant])
        for variant in guests
    }
    return {
        BIOS: vsphere.create_vm(
            FOLDER,
            "boot bios",
            [DiskSpec(vmdks[BIOS], "pvscsi")],
            guest_id="debian11_64Guest",
            memory_mb=512,
            nics=[NicSpec(mac="00:50:56:0b:00:01")],
        ),
        EFI: vsphere.create_vm(
            FOLDER,
            "boot efi",
            [DiskSpec(vmdks[EFI], "sata"), DiskSpec(None, "sata", size_mib=8)],
            firmware="efi",
            guest_id="debian11_64Guest",
            cpus=2,
            cores_per_socket=2,
            memory_mb=512,
            cdrom_iso=f"[{vsphere.datastore}] iso/installer.iso",
        ),
    }


def export_with_domain(sim, vm_path: str, out: Path, *options: str) -> ElementTree.Element:
    """``hyperexport -convert -libvirt`` as an operator runs it; the domain it wrote."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVC_")} | govc_environment(sim)
    command = [HYPEREXPORT, "-vm", vm_path, "-output", str(out), "-convert", "-libvirt", "-quiet", *options]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (domain,) = out.glob("*.xml")
    return domain


def assert_the_domain_is_the_vms(domain: Path, *, target: str, firmware: str) -> None:
    """What the boot alone would not catch: a q35 machine, the VM's own firmware with secure
    boot off as the VM had it (OVMF in setup mode boots an unsigned guest anyway), and the
    converted guest disk first in boot order (a firmware falls through a blank first disk)."""
    root = ElementTree.parse(domain).getroot()
    assert root.find("os/type").get("machine") == "q35"
    assert root.find("os").get("firmware") == (firmware if firmware == "efi" else None)
    features = {f.get("name"): f.get("enabled") for f in root.findall("os/firmware/feature")}
    assert features == ({"secure-boot": "no", "enrolled-keys": "no"} if firmware == "efi" else {})
    manifest = json.loads((domain.parent / "manifest.json").read_text())
    first = min(manifest["disks"], key=lambda disk: disk["boot_order_hint"])
    (booting,) = [
        d
        for d in root.findall("devices/disk")
        if d.find("boot") is not None and d.find("boot").get("order") == "1"
    ]
    assert booting.find("source").get("file") == f"{manifest['output']['directory']}/{first['id']}.{target}"
    assert booting.find("driver").get("type") == target


@pytest.mark.vsphere
@pytest.mark.parametrize(("options", "bus"), [((), "virtio"), (("-disk-bus", "scsi"), "scsi")])
def test_the_exported_bios_vm_boots_by_its_domain(vsphere, guest_vms, tmp_path, options, bus):
    domain = export_with_domain(vsphere, guest_vms[BIOS], tmp_path / "out", *options)
    disks = ElementTree.parse(domain).getroot().findall("devices/disk")
    assert [(d.find("target").get("bus"), d.find("driver").get("type")) for d in disks] == [(bus, "qcow2")]
    assert_the_domain_is_the_vms(domain, target="qcow2", firmware="bios")
    output = boot_domain(domain, marker=marker(BIOS))
    assert marker(BIOS) in serial_lines(output), output[-3000:]


@pytest.mark.vsphere
def test_the_exported_efi_vm_boots_by_its_domain_from_sata(vsphere, guest_vms, tmp_path):
    domain = export_with_domain(
        vsphere, guest_vms[EFI], tmp_path / "out", "-disk-bus", "sata", "-manifest-target", "raw"
    )
    root = ElementTree.parse(domain).getroot()
    assert root.find("os").get("firmware") == "efi"
    drives = [(d.get("device"), d.find("target").get("bus")) for d in root.findall("devices/disk")]
    assert drives == [("disk", "sata"), ("disk", "sata"), ("cdrom", "sata")]
    assert_the_domain_is_the_vms(domain, target="raw", firmware="efi")
    output = boot_domain(domain, marker=marker(EFI))
    assert marker(EFI) in serial_lines(output), output[-3000:]
