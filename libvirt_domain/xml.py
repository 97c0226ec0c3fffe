"""``DomainPlan`` → libvirt domain XML (https://libvirt.org/formatdomain.html), built with
ElementTree so every name and path is escaped by the serializer, never by hand.

Besides the plan's choices, every domain gets what a migrated server needs to be reached and
managed: a serial console (``virsh console``), VNC on localhost only (``virsh vncdisplay``,
through an ssh tunnel), a USB tablet so the VNC pointer follows, a virtio RNG fed from the
host's ``/dev/urandom``, and the QEMU guest agent's channel.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from libvirt_domain.plan import DomainPlan, PlannedDisk, PlannedNic

__all__ = ["domain_xml"]

GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"


def domain_xml(plan: DomainPlan) -> str:
    """The ``<domain type='kvm'>`` document for ``plan``, UTF-8 text ending in a newline."""
    domain = ElementTree.Element("domain", type="kvm")
    _text(domain, "name", plan.name)
    if plan.uuid:
        _text(domain, "uuid", plan.uuid)
    _text(domain, "title", plan.title)
    _text(domain, "memory", str(plan.memory_mib), unit="MiB")
    _text(domain, "vcpu", str(plan.vcpus), placement="static")
    domain.append(_os(plan))
    features = ElementTree.SubElement(domain, "features")
    ElementTree.SubElement(features, "acpi")
    ElementTree.SubElement(features, "apic")
    if plan.secure_boot:
        # OVMF's secure boot builds need System Management Mode to protect their variables.
        ElementTree.SubElement(features, "smm", state="on")
    cpu = ElementTree.SubElement(domain, "cpu", mode="host-passthrough", check="none", migratable="on")
    ElementTree.SubElement(
        cpu, "topology", sockets=str(plan.sockets), dies="1", cores=str(plan.cores), threads="1"
    )
    clock = ElementTree.SubElement(domain, "clock", offset=plan.clock)
    ElementTree.SubElement(clock, "timer", name="rtc", tickpolicy="catchup")
    ElementTree.SubElement(clock, "timer", name="pit", tickpolicy="delay")
    ElementTree.SubElement(clock, "timer", name="hpet", present="no")
    _text(domain, "on_poweroff", "destroy")
    _text(domain, "on_reboot", "restart")
    _text(domain, "on_crash", "destroy")
    domain.append(_devices(plan))
    ElementTree.indent(domain, space="  ")
    return ElementTree.tostring(domain, encoding="unicode") + "\n"


def _os(plan: DomainPlan) -> ElementTree.Element:
    # firmware='efi': libvirt picks an OVMF build (and its variables template) that matches
    # the features asked, from the firmware descriptors the host's packages install.
    os_element = (
        ElementTree.Element("os", firmware="efi") if plan.firmware == "efi" else ElementTree.Element("os")
    )
    _text(os_element, "type", "hvm", arch="x86_64", machine=plan.machine)
    if plan.firmware == "efi":
        firmware = ElementTree.SubElement(os_element, "firmware")
        enabled = "yes" if plan.secure_boot else "no"
        ElementTree.SubElement(firmware, "feature", enabled=enabled, name="enrolled-keys")
        ElementTree.SubElement(firmware, "feature", enabled=enabled, name="secure-boot")
    return os_element


def _devices(plan: DomainPlan) -> ElementTree.Element:
    devices = ElementTree.Element("devices")
    for disk in plan.disks:
        devices.append(_disk(disk))
    if plan.cdrom_target:
        cdrom = ElementTree.SubElement(devices, "disk", type="file", device="cdrom")
        ElementTree.SubElement(cdrom, "driver", name="qemu", type="raw")
        ElementTree.SubElement(cdrom, "target", dev=plan.cdrom_target, bus="sata")
        ElementTree.SubElement(cdrom, "readonly")
    if any(disk.bus == "scsi" for disk in plan.disks):
        ElementTree.SubElement(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    for nic in plan.nics:
        devices.append(_interface(nic))
    serial = ElementTree.SubElement(devices, "serial", type="pty")
    ElementTree.SubElement(serial, "target", port="0")
    console = ElementTree.SubElement(devices, "console", type="pty")
    ElementTree.SubElement(console, "target", type="serial", port="0")
    channel = ElementTree.SubElement(devices, "channel", type="unix")
    ElementTree.SubElement(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)
    ElementTree.SubElement(devices, "input", type="tablet", bus="usb")
    graphics = ElementTree.SubElement(devices, "graphics", type="vnc", port="-1", autoport="yes")
    ElementTree.SubElement(graphics, "listen", type="address", address="127.0.0.1")
    video = ElementTree.SubElement(devices, "video")
    ElementTree.SubElement(video, "model", type="vga")
    rng = ElementTree.SubElement(devices, "rng", model="virtio")
    _text(rng, "backend", "/dev/urandom", model="random")
    return devices


def _disk(disk: PlannedDisk) -> ElementTree.Element:
    element = ElementTree.Element("disk", type="file", device="disk")
    ElementTree.SubElement(element, "driver", name="qemu", type=disk.format, discard="unmap")
    ElementTree.SubElement(element, "source", file=disk.path)
    ElementTree.SubElement(element, "target", dev=disk.target, bus=disk.bus)
    ElementTree.SubElement(element, "boot", order=str(disk.boot))
    return element


def _interface(nic: PlannedNic) -> ElementTree.Element:
    element = ElementTree.Element("interface", type=nic.target.kind)
    if nic.mac:
        ElementTree.SubElement(element, "mac", address=nic.mac)
    ElementTree.SubElement(element, "source", {nic.target.kind: nic.target.name})
    ElementTree.SubElement(element, "model", type=nic.model)
    if not nic.connected:
        ElementTree.SubElement(element, "link", state="down")
    return element


def _text(parent: ElementTree.Element, tag: str, text: str, **attributes: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag, attributes)
    element.text = text
    return element
