"""A domain that validates can still fail to boot: real guests boot in QEMU from libvirt domains.

The two test guests (``tests/guests/build.py``: Debian's kernel and busybox, BIOS + syslinux and
EFI + systemd-boot's stub) print a marker line naming the image and the firmware they found,
then power off. ``boot_domain`` runs exactly the hardware a domain describes. Each boot costs
seconds (TCG where KVM is not hardware-backed), so there are few of them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.guests.boot import UnmappedDomain, boot_domain, qemu_command
from tests.guests.build import BIOS, EFI, bios_guest, efi_guest, marker

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


@pytest.fixture(scope="module")
def domains(guests, tmp_path_factory) -> dict[str, Path]:
    """BIOS from a virtio disk, EFI (secure boot off) from a SATA disk."""
    directory = tmp_path_factory.mktemp("domains")
    return {
        BIOS: hand_written_domain(directory / "bios.xml", image=guests[BIOS], bus="virtio", firmware=BIOS),
        EFI: hand_written_domain(directory / "efi.xml", image=guests[EFI], bus="sata", firmware=EFI),
    }


def serial_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()]


def test_the_bios_guest_boots_from_a_virtio_disk_by_its_domain(domains):
    output = boot_domain(domains[BIOS], marker=marker(BIOS))
    assert marker(BIOS) in serial_lines(output), output[-3000:]


def test_the_efi_guest_boots_from_a_sata_disk_by_its_domain_with_secure_boot_off(domains):
    output = boot_domain(domains[EFI], marker=marker(EFI))
    assert marker(EFI) in serial_lines(output), output[-3000:]


@pytest.mark.parametrize("firmware", [BIOS, EFI])
def test_the_hand_written_domains_are_libvirt_domains(domains, firmware):
    """The domains the boot tests run are ones libvirt takes: its schema, and its test driver
    (no daemon, no KVM) defines them."""
    validated = subprocess.run(
        ["virt-xml-validate", str(domains[firmware]), "domain"], capture_output=True, text=True
    )
    assert validated.returncode == 0, validated.stderr
    defined = subprocess.run(
        ["virsh", "-c", "test:///default", "define", str(domains[firmware])], capture_output=True, text=True
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
