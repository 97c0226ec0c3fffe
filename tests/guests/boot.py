"""Boot a libvirt domain in QEMU with exactly the hardware its XML describes.

``boot_domain(domain_xml, marker=...)`` reads the domain, starts ``qemu-system-x86_64`` with
its machine type, firmware (SeaBIOS, or the OVMF build libvirt's firmware auto-selection
would pick for the domain's ``<firmware>`` features, with a private copy of its variables
file), memory, vCPU topology and disks (each file, format and bus, in the domain's boot
order), under ``-snapshot`` so the disks are never written, and returns what the guest printed
on its first serial port once ``marker`` appears or QEMU exits.

Every element and attribute of the domain must be read by this module: anything it cannot
map (an unknown bus, firmware, disk type, device …) raises ``UnmappedDomain``, so a change to
the domains we write is never silently left out of the boot.

Like libvirt, QEMU runs with ``-nodefaults``: every device comes from the domain. KVM is used
where the host's KVM is hardware-backed, else TCG (same hardware, slower).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["BootTimedOut", "QemuFailed", "UnmappedDomain", "boot_domain", "qemu_command"]

# A hang guard, not a speed check: under TCG on a busy two-core machine a guest boots in
# well under a minute.
DEFAULT_TIMEOUT = 300.0
QEMU = "qemu-system-x86_64"
# What a firmware prints on the serial console when it found nothing to boot: the run ends
# there rather than at the timeout.
FIRMWARE_GAVE_UP = ("BdsDxe: No bootable option or device was found.",)
# libvirt's firmware auto-selection reads QEMU's firmware descriptors (Debian: ovmf ships
# them); a file in /etc overrides one of the same name in /usr/share.
FIRMWARE_DESCRIPTOR_DIRS = (Path("/usr/share/qemu/firmware"), Path("/etc/qemu/firmware"))
MEMORY_UNITS = {
    "b": 1,
    "bytes": 1,
    "KB": 1000,
    "k": 1024,
    "KiB": 1024,
    "MB": 1000**2,
    "M": 1024**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "G": 1024**3,
    "GiB": 1024**3,
    "TB": 1000**4,
    "T": 1024**4,
    "TiB": 1024**4,
}
DISK_FORMATS = ("raw", "qcow2", "vdi", "vmdk")
NIC_MODELS = ("virtio", "e1000e", "e1000", "rtl8139")
VIDEO_MODELS = {"vga": "std", "virtio": "virtio", "qxl": "qxl", "cirrus": "cirrus", "none": "none"}
# q35's built-in AHCI controller has six ports, QEMU's buses ide.0 … ide.5.
SATA_PORTS = 6


class UnmappedDomain(ValueError):
    """The domain says something this runner cannot reproduce in QEMU."""


class QemuFailed(RuntimeError):
    """QEMU exited with an error before the guest printed the marker."""


class BootTimedOut(RuntimeError):
    """The guest neither printed the marker nor powered off in time (QEMU was killed)."""


def boot_domain(domain_xml: Path, *, marker: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Boot ``domain_xml`` in QEMU; return the serial console's output once a line of it is
    ``marker``, QEMU has exited (the guest powered off or rebooted) or the firmware found
    nothing to boot. Raises ``UnmappedDomain``, ``QemuFailed`` or ``BootTimedOut`` (QEMU
    killed at ``timeout`` s)."""
    with tempfile.TemporaryDirectory(prefix="hypersdk-boot-") as workdir:
        workdir = Path(workdir)
        serial = workdir / "serial.log"
        command = qemu_command(domain_xml, workdir=workdir, serial=serial)
        with open(workdir / "qemu.log", "wb") as log:
            qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + timeout
            while True:
                exited = qemu.poll() is not None
                output = serial.read_text(errors="replace") if serial.exists() else ""
                if _has_line(output, marker) or any(_has_line(output, line) for line in FIRMWARE_GAVE_UP):
                    return output
                if exited:
                    if qemu.returncode != 0:
                        error = (workdir / "qemu.log").read_text(errors="replace").strip()
                        raise QemuFailed(
                            f"{QEMU} exited {qemu.returncode}: {error}\nserial console:\n{output[-2000:]}"
                        )
                    return output
                if time.monotonic() > deadline:
                    raise BootTimedOut(
                        f"no {marker!r} within {timeout:.0f} s; serial console:\n{output[-2000:]}"
                    )
                time.sleep(0.2)
        finally:
            if qemu.poll() is None:
                qemu.kill()
            qemu.wait()


def _value(value: object) -> str:
    """A value inside a QEMU option list, where a comma is written twice."""
    return str(value).replace(",", ",,")


# OVMF colours its console lines with terminal escapes: a line is compared without them.
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _has_line(output: str, marker: str) -> bool:
    return any(_TERMINAL_ESCAPE.sub("", line).strip() == marker for line in output.splitlines())


def accelerator() -> str:
    """``kvm`` where /dev/kvm opens and is hardware-backed (kvm_intel or kvm_amd), else
    ``tcg``. A paravirtual KVM inside a VM (kvm_pvm) opens too but cannot run firmware's
    real-mode code: QEMU stops with "KVM internal error"."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return "tcg"
    hardware = any(Path("/sys/module", module).is_dir() for module in ("kvm_intel", "kvm_amd"))
    return "kvm" if hardware else "tcg"


@dataclass
class _Disk:
    device: str  # disk or cdrom
    path: Path | None  # None: an empty CD-ROM drive
    format: str
    bus: str
    target: str
    boot: int | None
    discard: str | None


def qemu_command(domain_xml: Path, *, workdir: Path, serial: Path, accel: str | None = None) -> list[str]:
    """The QEMU command line that runs ``domain_xml``'s hardware; the firmware's variables
    file, the serial output and any socket go in ``workdir``."""
    accel = accel or accelerator()
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise UnmappedDomain(f"{QEMU} is not installed (Debian package qemu-system-x86)")
    try:
        root = ET.parse(domain_xml).getroot()
    except ET.ParseError as exc:
        raise UnmappedDomain(f"{domain_xml}: not XML: {exc}") from None
    dom = _Reader(root)
    if root.tag != "domain":
        raise UnmappedDomain(f"{domain_xml}: the root element is <{root.tag}>, not <domain>")
    dom.attr(root, "type", choices=("kvm", "qemu"), required=True)
    # Anything that is only a name or a note for people or tools.
    for tag in ("title", "description", "metadata"):
        for element in dom.children(root, tag):
            dom.skip(element)

    args = [qemu, "-nodefaults", "-no-user-config", "-accel", accel, "-display", "none", "-monitor", "none"]
    args += ["-name", f"guest={_value(dom.text(dom.child(root, 'name', required=True)))}"]
    uuid = dom.child(root, "uuid")
    if uuid is not None:
        args += ["-uuid", dom.text(uuid)]
    args += ["-m", f"{_memory_mib(dom, root)}M"]
    machine, machine_options, firmware_args, boot_devices = _os(dom, root, workdir)
    machine_options += _features(dom, root)
    clock_args, clock_options = _clock(dom, root, accel)
    machine_options += clock_options
    args += ["-machine", ",".join([machine, *dict.fromkeys(machine_options)]), *firmware_args]
    args += _cpu(dom, root, accel)
    args += clock_args
    args += _lifecycle(dom, root)
    args += _power_management(dom, root, machine)

    devices = dom.child(root, "devices", required=True)
    emulator = dom.child(devices, "emulator")
    if emulator is not None and Path(dom.text(emulator)).name != QEMU:
        raise UnmappedDomain(f"<emulator> is {dom.text(emulator)!r}; this runner runs {QEMU}")
    disks = [_disk(dom, element) for element in dom.children(devices, "disk")]
    if boot_devices and any(disk.boot is not None for disk in disks):
        raise UnmappedDomain("the domain has both <os><boot dev> and per-disk <boot order>")
    if boot_devices:
        letters = {"hd": "c", "cdrom": "d", "network": "n", "fd": "a"}
        args += ["-boot", "order=" + "".join(letters[dev] for dev in boot_devices)]
    elif any(disk.boot is not None for disk in disks):
        # As libvirt runs a domain with per-device boot order: only the devices listed boot.
        args += ["-boot", "strict=on"]
    controllers = _controllers(dom, devices)
    args += [arg for device in controllers.values() for arg in device]
    args += _disk_args(disks, machine, controllers)
    _interfaces(dom, devices)
    args += _serial(dom, devices, serial)
    args += _video(dom, devices)
    args += _rng(dom, devices)
    args += _channels(dom, devices, workdir, controllers)
    args += _memballoon(dom, devices)
    args += _inputs(dom, devices, controllers)
    # A guest that reboots (a kernel panic with panic=1 does) ends the run at once rather
    # than looping until the timeout.
    args += ["-no-reboot", "-snapshot"]
    dom.refuse_unread()
    return args


class _Reader:
    """Reads the domain's XML and remembers each element and attribute read, so what no code
    here read can be refused (``refuse_unread``)."""

    def __init__(self, root: ET.Element) -> None:
        self.root = root
        self.parents = {child: parent for parent in root.iter() for child in parent}
        self.read: dict[int, set[str]] = {id(root): set()}

    def path(self, element: ET.Element) -> str:
        names = []
        while element is not None:
            names.append(element.tag)
            element = self.parents.get(element)
        return "/".join(reversed(names))

    def mark(self, element: ET.Element) -> ET.Element:
        self.read.setdefault(id(element), set())
        return element

    def child(self, parent: ET.Element, tag: str, *, required: bool = False) -> ET.Element | None:
        found = self.children(parent, tag)
        if len(found) > 1:
            raise UnmappedDomain(f"<{self.path(parent)}> has {len(found)} <{tag}> elements")
        if not found and required:
            raise UnmappedDomain(f"<{self.path(parent)}> has no <{tag}>")
        return found[0] if found else None

    def children(self, parent: ET.Element, tag: str) -> list[ET.Element]:
        return [self.mark(element) for element in parent.findall(tag)]

    def attr(
        self,
        element: ET.Element,
        name: str,
        *,
        default: str | None = None,
        choices: tuple[str, ...] | None = None,
        required: bool = False,
    ) -> str | None:
        self.mark(element)
        self.read[id(element)].add(name)
        value = element.get(name)
        if value is None:
            if required:
                raise UnmappedDomain(f"<{self.path(element)}> has no {name}=")
            return default
        if choices is not None and value not in choices:
            raise UnmappedDomain(
                f"<{self.path(element)} {name}='{value}'> is not mapped (only {', '.join(choices)})"
            )
        return value

    def text(self, element: ET.Element) -> str:
        self.mark(element)
        return (element.text or "").strip()

    def skip(self, element: ET.Element) -> None:
        for inner in element.iter():
            self.read[id(inner)] = set(inner.attrib)

    def refuse_unread(self) -> None:
        for element in self.root.iter():
            if id(element) not in self.read:
                raise UnmappedDomain(f"<{self.path(element)}> is not mapped to QEMU by this runner")
            unread = sorted(set(element.attrib) - self.read[id(element)])
            if unread:
                attrs = " ".join(f"{name}='{element.get(name)}'" for name in unread)
                raise UnmappedDomain(f"<{self.path(element)} {attrs}> is not mapped to QEMU by this runner")


def _memory_mib(dom: _Reader, root: ET.Element) -> int:
    def size(element: ET.Element) -> int:
        unit = dom.attr(element, "unit", default="KiB", choices=tuple(MEMORY_UNITS))
        return int(dom.text(element)) * MEMORY_UNITS[unit]

    memory = size(dom.child(root, "memory", required=True))
    current = dom.child(root, "currentMemory")
    if current is not None and size(current) != memory:
        raise UnmappedDomain("<currentMemory> differs from <memory> (a balloon target is not mapped)")
    if memory % (1 << 20):
        raise UnmappedDomain("<memory> is not a whole number of MiB")
    return memory >> 20


def _os(dom: _Reader, root: ET.Element, workdir: Path) -> tuple[str, list[str], list[str], list[str]]:
    """The machine type, machine options and firmware arguments, and ``<boot dev>``s."""
    os_ = dom.child(root, "os", required=True)
    kind = dom.child(os_, "type", required=True)
    dom.attr(kind, "arch", choices=("x86_64",), required=True)
    if dom.text(kind) != "hvm":
        raise UnmappedDomain(f"<os><type> is {dom.text(kind)!r}, not hvm")
    machine = dom.attr(kind, "machine", default="pc")
    canonical = _machines().get(machine, machine)
    if canonical not in _machines().values():
        raise UnmappedDomain(f"machine {machine!r} is not one {QEMU} knows")
    boot_devices = [
        dom.attr(boot, "dev", choices=("hd", "cdrom", "network", "fd"), required=True)
        for boot in dom.children(os_, "boot")
    ]
    firmware = dom.attr(os_, "firmware", choices=("bios", "efi"))
    features = {}
    firmware_element = dom.child(os_, "firmware")
    if firmware_element is not None:
        if firmware != "efi":
            raise UnmappedDomain("<os><firmware> without <os firmware='efi'> is not mapped")
        for feature in dom.children(firmware_element, "feature"):
            name = dom.attr(feature, "name", choices=("secure-boot", "enrolled-keys"), required=True)
            features[name] = dom.attr(feature, "enabled", choices=("yes", "no"), required=True) == "yes"
    if firmware != "efi":
        # BIOS (by name, or no firmware attribute and no <loader>): QEMU's own, SeaBIOS.
        return machine, [], [], boot_devices
    descriptor = _efi_firmware(canonical, features)
    mapping = descriptor["mapping"]
    code, template = mapping["executable"], mapping["nvram-template"]
    variables = workdir / f"VARS.{template['format']}"
    shutil.copyfile(template["filename"], variables)  # the firmware writes its variables
    args = [
        "-drive",
        f"if=pflash,unit=0,format={code['format']},readonly=on,file={_value(code['filename'])}",
        "-drive",
        f"if=pflash,unit=1,format={template['format']},file={_value(variables)}",
    ]
    options = []
    if "requires-smm" in descriptor["features"]:
        options.append("smm=on")
        args += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    return machine, options, args, boot_devices


@cache
def _machines() -> dict[str, str]:
    """QEMU's machine types: each name (alias or not) -> its versioned name."""
    listing = subprocess.run([QEMU, "-machine", "help"], capture_output=True, text=True, check=True).stdout
    machines = {}
    for line in listing.splitlines()[1:]:
        name = line.split(" ", 1)[0]
        alias = re.search(r"\(alias of (\S+)\)", line)
        machines[name] = alias.group(1) if alias else name
    return machines


def _efi_firmware(machine: str, features: dict[str, bool]) -> dict:
    """The firmware descriptor libvirt's auto-selection picks: the first, by file name, for
    UEFI on x86_64 with ``machine`` and flash storage that has each feature the domain
    enables and none it disables."""
    descriptors: dict[str, Path] = {}
    for directory in FIRMWARE_DESCRIPTOR_DIRS:
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            descriptors[path.name] = path
    for name in sorted(descriptors):
        descriptor = json.loads(descriptors[name].read_text())
        fits_machine = any(
            target["architecture"] == "x86_64"
            and any(fnmatch.fnmatch(machine, m) for m in target["machines"])
            for target in descriptor.get("targets", [])
        )
        has = set(descriptor.get("features", []))
        if (
            "uefi" in descriptor.get("interface-types", [])
            and descriptor.get("mapping", {}).get("device") == "flash"
            and fits_machine
            and all((feature in has) == enabled for feature, enabled in features.items())
        ):
            return descriptor
    wanted = ", ".join(f"{name}={'yes' if on else 'no'}" for name, on in features.items()) or "no features"
    raise UnmappedDomain(f"no UEFI firmware for {machine} with {wanted} (Debian package ovmf)")


def _features(dom: _Reader, root: ET.Element) -> list[str]:
    """Machine options from ``<features>``; without ``<acpi/>`` libvirt turns ACPI off."""
    features = dom.child(root, "features")
    if features is None:
        return ["acpi=off"]
    options = []
    if dom.child(features, "acpi") is None:
        options.append("acpi=off")
    for tag in ("apic", "pae"):  # always present on x86_64
        dom.child(features, tag)
    for tag in ("vmport", "smm"):
        element = dom.child(features, tag)
        if element is not None:
            options.append(f"{tag}={dom.attr(element, 'state', choices=('on', 'off'), required=True)}")
    return options


def _cpu(dom: _Reader, root: ET.Element, accel: str) -> list[str]:
    vcpus = int(dom.text(dom.child(root, "vcpu", required=True)))
    dom.attr(dom.child(root, "vcpu"), "placement", choices=("static",))
    cpu = dom.child(root, "cpu")
    if cpu is None:
        return ["-smp", str(vcpus)]
    args = []
    mode = dom.attr(cpu, "mode", default="custom", choices=("host-passthrough", "host-model", "maximum"))
    dom.attr(cpu, "check", choices=("none", "partial", "full"))
    dom.attr(cpu, "migratable", choices=("on", "off"))
    # The host's CPU under KVM; TCG cannot pass a host CPU through and offers "max", every
    # feature it emulates.
    args += ["-cpu", "host" if accel == "kvm" and mode != "maximum" else "max"]
    topology = dom.child(cpu, "topology")
    if topology is None:
        return [*args, "-smp", str(vcpus)]
    counts = {
        name: int(dom.attr(topology, name, default="1")) for name in ("sockets", "dies", "cores", "threads")
    }
    if counts["sockets"] * counts["dies"] * counts["cores"] * counts["threads"] != vcpus:
        raise UnmappedDomain(f"<cpu><topology> {counts} does not make {vcpus} vCPUs")
    return [*args, "-smp", ",".join([str(vcpus), *(f"{name}={count}" for name, count in counts.items())])]


def _clock(dom: _Reader, root: ET.Element, accel: str) -> tuple[list[str], list[str]]:
    """QEMU arguments and machine options for ``<clock>`` and its timers, as libvirt maps them."""
    clock = dom.child(root, "clock")
    if clock is None:
        return [], []
    rtc = [f"base={dom.attr(clock, 'offset', default='utc', choices=('utc', 'localtime'))}"]
    args, options = [], []
    for timer in dom.children(clock, "timer"):
        name = dom.attr(timer, "name", choices=("rtc", "pit", "hpet"), required=True)
        if name == "hpet":
            options.append(
                f"hpet={'on' if dom.attr(timer, 'present', choices=('yes', 'no')) != 'no' else 'off'}"
            )
            continue
        dom.attr(timer, "present", choices=("yes",))
        policy = dom.attr(timer, "tickpolicy", choices=("catchup", "delay") if name == "rtc" else ("delay",))
        if name == "rtc" and policy == "catchup":
            rtc.append("driftfix=slew")
        elif name == "pit" and policy == "delay" and accel == "kvm":
            # KVM's in-kernel PIT; TCG's PIT has no lost-tick policy to set.
            args += ["-global", "kvm-pit.lost_tick_policy=delay"]
    return ["-rtc", ",".join(rtc), *args], options


def _lifecycle(dom: _Reader, root: ET.Element) -> list[str]:
    # What happens after the guest stops is not part of booting it (see -no-reboot).
    for tag in ("on_poweroff", "on_reboot", "on_crash"):
        element = dom.child(root, tag)
        if element is not None and dom.text(element) not in ("destroy", "restart", "preserve"):
            raise UnmappedDomain(f"<{tag}>{dom.text(element)}</{tag}> is not mapped")
    return []


def _power_management(dom: _Reader, root: ET.Element, machine: str) -> list[str]:
    pm = dom.child(root, "pm")
    if pm is None:
        return []
    device = "ICH9-LPC" if "q35" in _machines().get(machine, machine) else "PIIX4_PM"
    args = []
    for tag, prop in (("suspend-to-mem", "disable_s3"), ("suspend-to-disk", "disable_s4")):
        element = dom.child(pm, tag)
        if element is not None:
            enabled = dom.attr(element, "enabled", choices=("yes", "no"), required=True) == "yes"
            args += ["-global", f"{device}.{prop}={0 if enabled else 1}"]
    return args


def _disk(dom: _Reader, element: ET.Element) -> _Disk:
    """A disk, or a CD-ROM drive (read-only, SATA, maybe empty)."""
    dom.attr(element, "type", choices=("file",), required=True)
    device = dom.attr(element, "device", choices=("disk", "cdrom"), default="disk")
    driver = dom.child(element, "driver", required=True)
    dom.attr(driver, "name", choices=("qemu",), required=True)
    disk_format = dom.attr(driver, "type", choices=DISK_FORMATS, required=True)
    discard = dom.attr(driver, "discard", choices=("unmap", "ignore"))
    source = dom.child(element, "source", required=device == "disk")
    path = None
    if source is not None:
        path = Path(dom.attr(source, "file", required=True))
        if not path.is_absolute() or not path.is_file():
            raise UnmappedDomain(f"disk source {path} is not an existing file named by its absolute path")
    target = dom.child(element, "target", required=True)
    dev = dom.attr(target, "dev", required=True)
    bus = dom.attr(
        target, "bus", choices=("virtio", "sata", "scsi") if device == "disk" else ("sata",), required=True
    )
    if device == "cdrom":
        dom.child(element, "readonly", required=True)  # as QEMU's CD-ROMs always are
    boot = dom.child(element, "boot")
    order = int(dom.attr(boot, "order", required=True)) if boot is not None else None
    return _Disk(device, path, disk_format, bus, dev, order, discard)


def _controllers(dom: _Reader, devices: ET.Element) -> dict[str, list[str]]:
    """The controllers the domain names, keyed by type, with the QEMU arguments each adds."""
    controllers: dict[str, list[str]] = {}
    for element in dom.children(devices, "controller"):
        kind = dom.attr(
            element, "type", choices=("scsi", "sata", "pci", "virtio-serial", "usb"), required=True
        )
        if dom.attr(element, "index", default="0") != "0" or kind in controllers:
            raise UnmappedDomain(f"a second <controller type='{kind}'> is not mapped")
        if kind == "scsi":
            dom.attr(element, "model", choices=("virtio-scsi",), required=True)
            controllers[kind] = ["-device", "virtio-scsi-pci,id=scsi0"]
        elif kind == "sata":
            controllers[kind] = []  # q35's built-in AHCI
        elif kind == "pci":
            dom.attr(element, "model", choices=("pcie-root", "pci-root"), required=True)
            controllers[kind] = []  # the machine's root bus
        elif kind == "virtio-serial":
            controllers[kind] = ["-device", "virtio-serial-pci,id=virtio-serial0"]
        else:
            model = dom.attr(element, "model", choices=("qemu-xhci", "none"), required=True)
            controllers[kind] = [] if model == "none" else ["-device", "qemu-xhci,id=usb"]
    return controllers


def _disk_args(disks: list[_Disk], machine: str, controllers: dict[str, list[str]]) -> list[str]:
    """One -drive and one -device per disk, placed as libvirt places them: virtio disks as
    PCI devices, SATA on the AHCI port the target's letter names (sda: 0), SCSI on the
    virtio-scsi controller with the letter as LUN."""
    args = []
    for n, disk in enumerate(disks):
        drive = f"drive{n}"
        source = f"file={_value(disk.path)},format={disk.format}," if disk.path is not None else ""
        options = f",discard={disk.discard}" if disk.discard else ""
        boot = f",bootindex={disk.boot}" if disk.boot is not None else ""
        if disk.device == "cdrom":
            args += ["-drive", f"{source}if=none,id={drive},media=cdrom,readonly=on"]
            args += ["-device", f"ide-cd,drive={drive},bus=ide.{_sata_port(disk, machine)}{boot}"]
            continue
        args += ["-drive", f"{source}if=none,id={drive}{options}"]
        if disk.bus == "virtio":
            _target_index(disk.target, "vd")
            args += ["-device", f"virtio-blk-pci,drive={drive}{boot}"]
        elif disk.bus == "sata":
            args += ["-device", f"ide-hd,drive={drive},bus=ide.{_sata_port(disk, machine)}{boot}"]
        else:
            if "scsi" not in controllers:
                raise UnmappedDomain(
                    "SCSI disks without <controller type='scsi' model='virtio-scsi'/>: libvirt would add "
                    "its default model (lsilogic), which this runner does not map"
                )
            lun = _target_index(disk.target, "sd")
            args += ["-device", f"scsi-hd,drive={drive},bus=scsi0.0,channel=0,scsi-id=0,lun={lun}{boot}"]
    return args


def _sata_port(disk: _Disk, machine: str) -> int:
    if "q35" not in _machines().get(machine, machine):
        raise UnmappedDomain(f"a SATA drive on machine {machine!r} (only q35 has a built-in AHCI)")
    port = _target_index(disk.target, "sd")
    if port >= SATA_PORTS:
        raise UnmappedDomain(f"SATA drive {disk.target}: q35's AHCI has {SATA_PORTS} ports")
    return port


def _target_index(dev: str, prefix: str) -> int:
    """``vda`` -> 0, ``sdb`` -> 1, ``sdaa`` -> 26: libvirt's disk name to index."""
    if not re.fullmatch(rf"{prefix}[a-z]+", dev):
        raise UnmappedDomain(f"disk target {dev!r} is not a {prefix}* name")
    index = 0
    for letter in dev[len(prefix) :]:
        index = index * 26 + ord(letter) - ord("a") + 1
    return index - 1


def _interfaces(dom: _Reader, devices: ET.Element) -> None:
    """NICs are read but not attached: the guest needs no network to print its marker, and
    the domain tests check each NIC's MAC, network and model on the XML itself."""
    for element in dom.children(devices, "interface"):
        kind = dom.attr(element, "type", choices=("network", "bridge"), required=True)
        dom.attr(dom.child(element, "mac", required=True), "address", required=True)
        dom.attr(dom.child(element, "source", required=True), kind, required=True)
        model = dom.child(element, "model")
        if model is not None:
            dom.attr(model, "type", choices=NIC_MODELS, required=True)
        link = dom.child(element, "link")
        if link is not None:
            dom.attr(link, "state", choices=("up", "down"), required=True)


def _serial(dom: _Reader, devices: ET.Element, serial: Path) -> list[str]:
    """The first serial port (the guest's ttyS0) writes to ``serial``; a ``<console>`` on it is
    libvirt's alias of that port."""
    ports = dom.children(devices, "serial")
    if len(ports) != 1:
        raise UnmappedDomain(f"the domain has {len(ports)} <serial> ports; the boot is read from exactly one")
    dom.attr(ports[0], "type", choices=("pty",), required=True)
    target = dom.child(ports[0], "target")
    if target is not None:
        dom.attr(target, "type", choices=("isa-serial",))
        dom.attr(target, "port", choices=("0",))
        model = dom.child(target, "model")
        if model is not None:
            dom.attr(model, "name", choices=("isa-serial",), required=True)
    for console in dom.children(devices, "console"):
        dom.attr(console, "type", choices=("pty",), required=True)
        target = dom.child(console, "target", required=True)
        dom.attr(target, "type", choices=("serial",), required=True)
        dom.attr(target, "port", choices=("0",))
    return ["-chardev", f"file,id=serial0,path={_value(serial)}", "-device", "isa-serial,chardev=serial0"]


def _video(dom: _Reader, devices: ET.Element) -> list[str]:
    """VNC graphics are not opened (``-display none``: nobody watches a test's screen); the
    display adapter is the domain's ``<video>``, else libvirt's default for graphics, VGA."""
    graphics = dom.children(devices, "graphics")
    for element in graphics:
        dom.attr(element, "type", choices=("vnc",), required=True)
        dom.attr(element, "port")
        dom.attr(element, "autoport", choices=("yes", "no"))
        dom.attr(element, "listen")
        for listen in dom.children(element, "listen"):
            dom.attr(listen, "type", choices=("address",), required=True)
            dom.attr(listen, "address")
    video = dom.child(devices, "video")
    if video is None:
        return ["-vga", "std"] if graphics else []
    model = dom.child(video, "model", required=True)
    return ["-vga", VIDEO_MODELS[dom.attr(model, "type", choices=tuple(VIDEO_MODELS), required=True)]]


def _rng(dom: _Reader, devices: ET.Element) -> list[str]:
    args = []
    for n, element in enumerate(dom.children(devices, "rng")):
        dom.attr(element, "model", choices=("virtio",), required=True)
        backend = dom.child(element, "backend", required=True)
        kind = dom.attr(backend, "model", choices=("random", "builtin"), required=True)
        source = (
            f"rng-random,filename={_value(dom.text(backend) or '/dev/urandom')}"
            if kind == "random"
            else "rng-builtin"
        )
        args += ["-object", f"{source},id=rng{n}", "-device", f"virtio-rng-pci,rng=rng{n}"]
    return args


def _channels(
    dom: _Reader, devices: ET.Element, workdir: Path, controllers: dict[str, list[str]]
) -> list[str]:
    """virtio channels (the guest agent's) on a socket of our own in ``workdir``; libvirt adds
    the virtio-serial controller they need when the domain has none."""
    args = []
    for n, element in enumerate(dom.children(devices, "channel")):
        dom.attr(element, "type", choices=("unix",), required=True)
        source = dom.child(element, "source")
        if source is not None:  # the host side's path: a private one is used here
            dom.attr(source, "mode", choices=("bind",))
            dom.attr(source, "path")
        target = dom.child(element, "target", required=True)
        dom.attr(target, "type", choices=("virtio",), required=True)
        name = dom.attr(target, "name", required=True)
        if "virtio-serial" not in controllers:
            controllers["virtio-serial"] = []
            args += ["-device", "virtio-serial-pci,id=virtio-serial0"]
        socket = workdir / f"channel{n}.sock"
        args += [
            "-chardev",
            f"socket,id=channel{n},path={_value(socket)},server=on,wait=off",
            "-device",
            f"virtserialport,bus=virtio-serial0.0,chardev=channel{n},name={name}",
        ]
    return args


def _memballoon(dom: _Reader, devices: ET.Element) -> list[str]:
    """libvirt adds a virtio memory balloon unless the domain says ``model='none'``."""
    balloon = dom.child(devices, "memballoon")
    model = (
        "virtio" if balloon is None else dom.attr(balloon, "model", choices=("virtio", "none"), required=True)
    )
    return ["-device", "virtio-balloon-pci"] if model == "virtio" else []


def _inputs(dom: _Reader, devices: ET.Element, controllers: dict[str, list[str]]) -> list[str]:
    args = []
    for element in dom.children(devices, "input"):
        kind = dom.attr(element, "type", choices=("tablet", "mouse", "keyboard"), required=True)
        bus = dom.attr(element, "bus", choices=("usb", "ps2"), required=True)
        if bus == "usb":
            if "usb" not in controllers:
                # libvirt adds its default USB controller: qemu-xhci on q35.
                controllers["usb"] = ["-device", "qemu-xhci,id=usb"]
                args += controllers["usb"]
            elif not controllers["usb"]:
                raise UnmappedDomain("a USB input device on <controller type='usb' model='none'>")
            args += ["-device", f"usb-{'kbd' if kind == 'keyboard' else kind}"]
        # PS/2 mouse and keyboard are part of the machine.
    return args
