"""Build, start, seed and stop HyperSDK's vSphere test server.

The server (``main.go`` and friends in this directory) is govmomi's vcsim
extended with ExportVm/HttpNfcLease/NFC downloads and
OvfManager.CreateDescriptor. pyvmomi talks to it exactly as to vCenter, over
verified TLS. It also pages PropertyCollector retrievals, answers privilege checks, and
holds what an inventory and a preflight read (NICs, independent disks, RDMs, a datastore
that drops, connected drives, CBT, templates, encryption, guest OS and VMware Tools state;
see ``create_vm`` and the model controls below it), optionally among thousands of VMs
(``extra_vms``).

Typical use::

    sim = VSphereSimulator(tmp_path).start()
    try:
        vmdk = make_stream_vmdk(tmp_path / "disk0.vmdk", 8)
        sim.seed_disks("/dc/vm/prod/app01", [vmdk])
        si = sim.service_instance()
        ...
    finally:
        sim.stop()
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.processes import kill_process

__all__ = [
    "DiskSpec",
    "NicSpec",
    "SimulatorUnavailable",
    "VSphereSimulator",
    "build_ovf_checker",
    "build_simulator",
    "escape_name",
    "make_stream_vmdk",
]

SOURCE_DIR = Path(__file__).resolve().parent
DEFAULT_GOPATH = "/usr/share/gocode"
GOVMOMI_SIMULATOR = "src/github.com/vmware/govmomi/simulator"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class SimulatorUnavailable(RuntimeError):
    """The simulator cannot be built or started on this machine."""


def _cache_dir() -> Path:
    base = os.environ.get("HYPERSDK_SIM_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "hypersdk"


def _sources_digest(source_dir: Path = SOURCE_DIR) -> str:
    h = hashlib.sha256()
    for src in sorted(source_dir.glob("*.go")):
        h.update(src.name.encode() + b"\0")
        h.update(src.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def build_simulator() -> Path:
    """Build the Go server (GOPATH mode, offline) and return the binary path.

    The binary is cached as ``vsphere-sim-<sha256 of the .go sources>`` in
    ``${HYPERSDK_SIM_CACHE:-~/.cache/hypersdk}`` and reused when present.
    Raises SimulatorUnavailable with the compiler output if it cannot build.
    """
    return build_go(SOURCE_DIR, "vsphere-sim")


def build_ovf_checker() -> Path:
    """Build ``ovfcheck/`` (govmomi's ``ovf`` reader, see its main.go) like the simulator."""
    return build_go(SOURCE_DIR / "ovfcheck", "ovfcheck")


def build_go(source_dir: Path, prefix: str, *, needs_govmomi: bool = True) -> Path:
    """Build the Go program in ``source_dir`` (GOPATH mode, offline), cached as
    ``<prefix>-<sha256 of its .go sources>``; ``needs_govmomi=False`` for a standard-library
    program (then an empty GOPATH). Raises SimulatorUnavailable with the compiler output."""
    cache = _cache_dir()
    binary = cache / f"{prefix}-{_sources_digest(source_dir)}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary

    go = shutil.which("go")
    if go is None:
        raise SimulatorUnavailable("the Go toolchain ('go') is not installed")
    gopath = str(cache / "gopath-empty")
    if needs_govmomi:
        gopath = os.environ.get("HYPERSDK_SIM_GOPATH", DEFAULT_GOPATH)
        if not (Path(gopath) / GOVMOMI_SIMULATOR).is_dir():
            raise SimulatorUnavailable(
                f"govmomi's simulator package is missing from {gopath}/{GOVMOMI_SIMULATOR} "
                "(install golang-github-vmware-govmomi-dev)"
            )
    cache.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        GO111MODULE="off",
        GOPROXY="off",
        GOFLAGS="",
        GOPATH=gopath,
        GOCACHE=str(cache / "gocache"),
        CGO_ENABLED="0",
    )
    # Build to a private name, then rename: concurrent builds (pytest-xdist)
    # never see a half-written binary.
    tmp = cache / f".{binary.name}.{os.getpid()}.tmp"
    proc = subprocess.run(
        [go, "build", "-o", str(tmp), "."],
        cwd=source_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SimulatorUnavailable(f"building {prefix} failed:\n{proc.stdout}{proc.stderr}")
    os.replace(tmp, binary)
    # Drop binaries of older sources (running ones keep their inode).
    for old in cache.glob(f"{prefix}-*"):
        if old != binary and old.is_file():
            old.unlink(missing_ok=True)
    return binary


def make_stream_vmdk(path: Path, size_mib: int, seed_raw: Path | None = None) -> Path:
    """Create a streamOptimized VMDK at ``path`` from a raw image.

    The raw image is kept next to it as ``<name>.raw`` (for ``qemu-img
    compare``). It is ``seed_raw`` copied when given, otherwise ``size_mib``
    MiB of random data.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw")
    if seed_raw is not None:
        if Path(seed_raw).resolve() != raw.resolve():
            shutil.copyfile(seed_raw, raw)
    else:
        chunk = 1024 * 1024
        with open(raw, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(chunk))
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise SimulatorUnavailable("qemu-img is not installed")
    path.unlink(missing_ok=True)
    subprocess.run(
        [
            qemu_img,
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            str(raw),
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    return path


def make_sparse_stream_vmdk(path: Path, size: int, data: dict[int, bytes]) -> Path:
    """A streamOptimized VMDK of virtual ``size`` bytes holding ``data`` at its offsets.

    The raw seed beside it is a sparse file: a disk of many GiB costs only its data.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw")
    with open(raw, "wb") as f:
        f.truncate(size)
        for offset, chunk in data.items():
            f.seek(offset)
            f.write(chunk)
    return make_stream_vmdk(path, 0, seed_raw=raw)


@dataclass(frozen=True)
class DiskSpec:
    """One disk of a VM made by ``VSphereSimulator.create_vm``.

    ``image`` is a streamOptimized VMDK uploaded into the disk; its virtual size becomes the
    disk's capacity. ``None`` makes a disk of ``size_mib`` MiB that was never written (an
    export streams it as an empty VMDK).
    ``controller`` is ``pvscsi``, ``lsilogic``, ``sata``, ``nvme`` or ``ide``.
    ``thin``: thin provisioned, otherwise thick eager-zeroed (``backing.eagerlyScrub``).
    ``mode`` is the backing's ``diskMode``: ``persistent``, ``nonpersistent``,
    ``independent_persistent`` or ``independent_nonpersistent`` (ExportVm leaves independent
    disks out of the lease, as vSphere does).
    ``rdm``: ``"physical"`` or ``"virtual"`` makes the disk a raw device mapping
    (``VirtualDiskRawDiskMappingVer1BackingInfo`` with ``compatibilityMode`` ``physicalMode`` or
    ``virtualMode``, a ``vml.…`` deviceName and lunUuid); a physical-mode RDM is always
    ``independent_persistent``, as on vSphere. ExportVm leaves RDMs out; no image is uploaded.
    (vcsim cannot add an RDM: the disk is made flat, then converted by the ``/hypersdk-sim/rdm``
    control; reconfiguring an RDM disk itself afterwards is not supported.)
    ``datastore``: the datastore holding the disk file (default: the VM's own, ``LocalDS_0``;
    see ``VSphereSimulator.add_datastore``).
    """

    image: Path | None
    controller: str = "pvscsi"
    thin: bool = True
    mode: str = "persistent"
    rdm: str | None = None
    datastore: str | None = None
    size_mib: int = 64

    def capacity_bytes(self) -> int:
        """The disk's capacity: the image's virtual size, else ``size_mib`` MiB."""
        return _virtual_size(self.image) if self.image is not None else self.size_mib << 20


DISK_MODES = ("persistent", "nonpersistent", "independent_persistent", "independent_nonpersistent")
RDM_MODES = {"physical": "physicalMode", "virtual": "virtualMode"}
NIC_ADAPTERS = ("vmxnet3", "e1000e", "e1000", "vmxnet2", "pcnet32")
TOOLS_STATES = ("running", "not-running", "not-installed")


@dataclass(frozen=True)
class NicSpec:
    """One network adapter of a VM made by ``VSphereSimulator.create_vm``.

    ``network``: a network of the datacenter by name (``"VM Network"`` exists; add port groups
    with ``VSphereSimulator.add_network``). ``mac``: a static MAC (``addressType`` manual), or
    ``None`` for one the server generates. ``adapter``: ``vmxnet3``, ``e1000e``, ``e1000``,
    ``vmxnet2`` or ``pcnet32``. ``connected``: ``connectable.startConnected``
    (``connectable.connected`` too while the VM is powered on).
    """

    network: str = "VM Network"
    mac: str | None = None
    adapter: str = "vmxnet3"
    connected: bool = True


def _new_disk(
    n: int,
    controller_key: int,
    unit: int,
    image: Path | None,
    file_name: str,
    *,
    thin: bool | None = None,
    spec: DiskSpec | None = None,
    key: int | None = None,
    label: str | None = None,
):
    """The spec adding the ``n``-th new disk (key ``-(n + 1)``), sized as ``image``'s virtual size
    (or ``spec``'s). ``thin`` True/False also sets eagerlyScrub to match; None: thin, eagerlyScrub
    left unset. ``spec`` adds its disk mode; ``key``/``label`` the device key and label vCenter
    would give it (2000 + n, "Hard disk N")."""
    from pyVmomi import vim

    size = spec.capacity_bytes() if spec is not None else _virtual_size(image)
    kb = math.ceil(size / 1024)
    mode = spec.mode if spec is not None else "persistent"
    # An RDM starts as a flat disk: vcsim cannot add one (see set_rdm).
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
        fileName=file_name, diskMode=mode, thinProvisioned=True if thin is None else thin
    )
    if thin is not None:
        backing.eagerlyScrub = not thin
    disk = vim.vm.device.VirtualDisk(
        key=-(n + 1) if key is None else key,
        controllerKey=controller_key,
        unitNumber=unit,
        capacityInKB=kb,
        capacityInBytes=kb * 1024,
        backing=backing,
    )
    if label is not None:
        disk.deviceInfo = vim.Description(label=label, summary=f"{kb:,} KB")
    return vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)


def _connectable(connected: bool):
    from pyVmomi import vim

    return vim.vm.device.VirtualDevice.ConnectInfo(
        connected=connected, startConnected=connected, allowGuestControl=True
    )


def _new_nic(key: int, label: str, spec: NicSpec):
    """The device of a new network adapter on a standard port group."""
    from pyVmomi import vim

    classes = {
        "vmxnet3": vim.vm.device.VirtualVmxnet3,
        "e1000e": vim.vm.device.VirtualE1000e,
        "e1000": vim.vm.device.VirtualE1000,
        "vmxnet2": vim.vm.device.VirtualVmxnet2,
        "pcnet32": vim.vm.device.VirtualPCNet32,
    }
    nic = classes[spec.adapter](
        key=key,
        deviceInfo=vim.Description(label=label, summary=spec.network),
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=spec.network),
        connectable=_connectable(spec.connected),
        addressType="manual" if spec.mac else "generated",
    )
    if spec.mac:
        nic.macAddress = spec.mac
    return nic


def _virtual_size(image: Path) -> int:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(image)], check=True, capture_output=True, text=True
    ).stdout
    return int(json.loads(out)["virtual-size"])


def escape_name(name: str) -> str:
    """A managed entity name as vCenter stores and reports it: ``/`` as ``%2f``, ``\\`` as
    ``%5c``, and a ``%`` that starts no ``%XX`` escape as ``%25`` (the simulator does the same)."""
    out = []
    for i, c in enumerate(name):
        if c == "/":
            out.append("%2f")
        elif c == "\\":
            out.append("%5c")
        elif c == "%" and not re.match(r"%[0-9A-Fa-f]{2}", name[i : i + 3]):
            out.append("%25")
        else:
            out.append(c)
    return "".join(out)


def _split_ds_path(name: str) -> tuple[str, str]:
    """'[LocalDS_0] dir/disk.vmdk' -> ('LocalDS_0', 'dir/disk.vmdk')."""
    ds, _, rel = name.partition("]")
    return ds.lstrip("["), rel.strip()


class VSphereSimulator:
    """One running vSphere test server (a subprocess)."""

    def __init__(
        self, workdir: Path, *, lease_timeout: float = 300.0, nfc_rate: int = 0, extra_vms: int = 0
    ) -> None:
        """``lease_timeout``: seconds an export lease lives without progress. ``nfc_rate``: bytes/s
        each NFC download is throttled to (0: unlimited). ``extra_vms``: this many more VMs beside
        the user guide's five, under ``/dc/vm/fleet/<group>/<group>-NNNNN`` (groups web, db, app,
        batch, k8s, windows, lab, legacy), with varied power state (about half on, some
        suspended), guest OS, CPUs, cores per socket, memory, firmware, one or two disks, one
        vmxnet3/e1000e NIC on "VM Network", VMware Tools running in most powered-on VMs, CBT on
        every 5th, a snapshot on every 25th and every 100th a template. Their datastore then
        lives in /dev/shm (removed on ``stop``). 5,000 take about 10 s to start on two idle
        cores."""
        if extra_vms < 0:
            raise ValueError(f"extra_vms must be >= 0, not {extra_vms}")
        self.workdir = Path(workdir)
        self.lease_timeout = lease_timeout
        self.nfc_rate = nfc_rate
        self.extra_vms = extra_vms
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.host = ""
        self.username = ""
        self.password = ""
        self.ca_file = Path()
        self.thumbprint = ""
        self.datacenter = ""
        self.datastore = ""
        self.log_file = self.workdir / "vsphere-sim.log"
        self._tmpdir: Path | None = None
        self._connections: list[Any] = []

    # ---- life-cycle ----

    def start(self) -> VSphereSimulator:
        if self.proc is not None:
            return self
        binary = build_simulator()
        self.workdir.mkdir(parents=True, exist_ok=True)
        # vcsim puts its datastores in TMPDIR: give it a directory we own
        # and remove on stop.
        # A large inventory is tens of thousands of small files (a .vmx and disk files per VM):
        # on memory they take seconds, on a busy disk minutes.
        base = self.workdir
        if self.extra_vms and os.access("/dev/shm", os.W_OK):
            base = Path("/dev/shm")
        self._tmpdir = Path(tempfile.mkdtemp(prefix="vsphere-sim-tmp-", dir=base))
        cert = self.workdir / "vsphere-sim-cert.pem"
        cmd = [
            str(binary),
            "-listen",
            "127.0.0.1",
            "-port",
            "0",
            "-cert-out",
            str(cert),
            "-lease-timeout",
            f"{max(1, int(self.lease_timeout * 1000))}ms",
            "-nfc-rate",
            str(int(self.nfc_rate)),
            "-extra-vms",
            str(int(self.extra_vms)),
        ]
        env = dict(os.environ, TMPDIR=str(self._tmpdir))
        log = open(self.log_file, "ab")
        try:
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env, text=True
            )
        finally:
            log.close()

        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT + self.extra_vms / 100)  # a large inventory takes a while to make
        if not line or not line[0].strip():
            self.stop()
            raise SimulatorUnavailable(f"vSphere simulator did not become ready:\n{self._log_tail()}")
        info = json.loads(line[0])
        self.url = info["url"]
        self.host = info["host"]
        self.username = info["username"]
        self.password = info["password"]
        self.ca_file = Path(info["cert"])
        self.thumbprint = info["thumbprint"]
        self.datacenter = info["datacenter"]
        self.datastore = info["datastore"]
        return self

    def stop(self) -> None:
        for si in self._connections:
            try:
                from pyVim.connect import Disconnect

                Disconnect(si)
            except Exception:  # noqa: BLE001 - best effort on teardown
                pass
        self._connections.clear()
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def kill(self) -> None:
        """SIGKILL the server, as a crashed vCenter; ``stop()`` still cleans up afterwards."""
        kill_process(self.proc)

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open but nothing answers (a hung vCenter)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> VSphereSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ---- clients ----

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def service_instance(self):
        """A new pyvmomi ServiceInstance, logged in, TLS verified with ca_file."""
        from pyVim.connect import SmartConnect

        host, port = self.host.rsplit(":", 1)
        return SmartConnect(
            host=host, port=int(port), user=self.username, pwd=self.password, sslContext=self.ssl_context()
        )

    def _si(self):
        if not self._connections:
            self._connections.append(self.service_instance())
        return self._connections[0]

    def find_vm(self, vm_path: str, si=None):
        si = si or self._si()
        vm = si.RetrieveContent().searchIndex.FindByInventoryPath(vm_path)
        if vm is None:
            raise LookupError(f"no VM at inventory path {vm_path!r}")
        return vm

    def _session_cookie(self, si) -> dict[str, str]:
        cookie = getattr(si._stub, "cookie", "") or ""
        name, _, rest = cookie.partition("=")
        value = rest.split(";", 1)[0].strip('"')
        return {name.strip(): value} if name and value else {}

    # ---- seeding and power ----

    def seed_disks(self, vm_path: str, images: list[Path]) -> None:
        """Give the VM one disk per image, big enough, holding that image.

        Existing disks are grown (never shrunk) to each image's virtual size,
        missing ones are added on the first disk's controller, extra ones are
        removed; then each streamOptimized VMDK is uploaded over the
        datastore HTTP endpoint to its disk's backing file.
        """
        import requests
        from pyVim.task import WaitForTask
        from pyVmomi import vim

        images = [Path(p) for p in images]
        si = self._si()
        vm = self.find_vm(vm_path, si)
        devices = list(vm.config.hardware.device)
        disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        if not disks and images:
            raise RuntimeError(f"{vm_path} has no disk to model new disks on")

        changes = []
        for disk, image in zip(disks, images, strict=False):  # extra images get new disks below
            size = _virtual_size(image)
            if size > (disk.capacityInBytes or disk.capacityInKB * 1024):
                disk.capacityInKB = math.ceil(size / 1024)
                disk.capacityInBytes = disk.capacityInKB * 1024
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk))
        for disk in disks[len(images) :]:
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="remove", device=disk))
        if len(images) > len(disks):
            template = disks[0]
            ds_name, rel = _split_ds_path(template.backing.fileName)
            folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
            used_units = {d.unitNumber for d in devices if d.controllerKey == template.controllerKey}
            used_names = {d.backing.fileName for d in disks}
            unit, index = 0, 2
            for n, image in enumerate(images[len(disks) :]):
                while unit in used_units or unit == 7:  # unit 7 is the SCSI controller itself
                    unit += 1
                used_units.add(unit)
                while True:
                    name = f"[{ds_name}] {folder + '/' if folder else ''}disk{index}.vmdk"
                    index += 1
                    if name not in used_names:
                        break
                changes.append(_new_disk(n, template.controllerKey, unit, image, name))
        if changes:
            WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)), si=si)

        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        if len(disks) != len(images):
            raise RuntimeError(
                f"{vm_path} has {len(disks)} disks after reconfiguration, wanted {len(images)}"
            )
        cookies = self._session_cookie(si)
        for disk, image in zip(disks, images, strict=True):
            ds_name, rel = _split_ds_path(disk.backing.fileName)
            with open(image, "rb") as data:
                r = requests.put(
                    f"https://{self.host}/folder/{rel}",
                    params={"dcPath": self.datacenter, "dsName": ds_name},
                    data=data,
                    cookies=cookies,
                    verify=str(self.ca_file),
                    timeout=600,
                )
            r.raise_for_status()

    def _upload(self, si, datastore_path: str, data) -> None:
        import requests

        ds_name, rel = _split_ds_path(datastore_path)
        r = requests.put(
            f"https://{self.host}/folder/{quote(rel)}",
            params={"dcPath": self.datacenter, "dsName": ds_name},
            data=data,
            cookies=self._session_cookie(si),
            verify=str(self.ca_file),
            timeout=600,
        )
        r.raise_for_status()

    def _folder(self, si, folder_path: str):
        """The VM folder at ``/dc/vm/a/b``, made (with its parents) when missing."""
        from pyVmomi import vim

        content = si.RetrieveContent()
        parts = [p for p in folder_path.strip("/").split("/") if p]
        if parts[:2] != [self.datacenter, "vm"]:
            raise ValueError(f"{folder_path!r} is not under /{self.datacenter}/vm")
        folder = content.searchIndex.FindByInventoryPath(f"{self.datacenter}/vm")
        for part in parts[2:]:
            child = next(
                (c for c in folder.childEntity if isinstance(c, vim.Folder) and c.name == part), None
            )
            folder = child or folder.CreateFolder(part)
        return folder

    def create_vm(
        self,
        folder_path: str,
        name: str,
        disks: list[DiskSpec],
        *,
        firmware: str = "bios",
        secure_boot: bool = False,
        nvram: bytes | None = None,
        cdrom_iso: str | None = None,
        floppy_image: str | None = None,
        snapshots: int = 0,
        cdrom_connected: bool = True,
        floppy_connected: bool = True,
        nics: list[NicSpec] | None = None,
        guest_id: str = "otherGuest64",
        cpus: int = 1,
        cores_per_socket: int = 1,
        memory_mb: int = 256,
        cbt: bool = False,
        template: bool = False,
        encrypted: bool = False,
        power_on: bool = False,
        tools: str = "not-installed",
        detected_guest_id: str | None = None,
    ) -> str:
        """Create a VM shaped like a real one; return its inventory path (the name escaped as
        vCenter escapes it: ``a/b`` is ``a%2fb``, see ``escape_name``).

        One controller per kind the disks name (bus 0), the disks on them in order (units
        0, 1, ...) holding their images (see ``DiskSpec`` for modes, RDMs and datastores),
        optionally an ISO-backed CD-ROM on IDE 1 and an image-backed floppy, EFI firmware with
        secure boot, NVRAM content (which makes the export lease offer the ``.nvram``), and
        ``snapshots`` snapshots taken after seeding.

        ``cdrom_connected``/``floppy_connected``: the drive's ``connectable.startConnected``
        (True by default). As on vCenter, ``connectable.connected`` is False while the VM is
        powered off and follows ``startConnected`` once it is powered on (NICs alike).
        ``nics``: network adapters (``NicSpec``); none by default.
        ``guest_id``: the configured guest OS (``config.guestId``; ``config.guestFullName`` is
        vCenter's name for it, e.g. ``debian11_64Guest`` -> "Debian GNU/Linux 11 (64-bit)").
        ``cpus``/``cores_per_socket``/``memory_mb``: ``config.hardware.numCPU``,
        ``numCoresPerSocket`` and ``memoryMB``. ``cbt``: ``config.changeTrackingEnabled``.
        ``template``: marked as a template (``config.template``) after seeding and snapshots.
        ``encrypted``: ``config.keyId`` (and each disk's ``backing.keyId``) set, as vCenter
        reports an encrypted VM (see ``set_encrypted``).
        ``power_on``: powered on at the end. ``tools``: VMware Tools ``running`` (needs
        ``power_on``; ``guest.guestId``/``guestFullName`` then report ``detected_guest_id``,
        default ``guest_id``), ``not-running`` or ``not-installed`` (see ``set_guest``).
        Raises ValueError for a value the simulator (or vCenter) would refuse.
        """
        from pyVim.task import WaitForTask
        from pyVmomi import vim

        nics = list(nics or [])
        if tools not in TOOLS_STATES:
            raise ValueError(f"tools must be one of {TOOLS_STATES}, not {tools!r}")
        if tools == "running" and not power_on:
            raise ValueError("VMware Tools run only in a powered-on VM: pass power_on=True")
        if template and power_on:
            raise ValueError("a template cannot be powered on")
        for spec in disks:
            if spec.mode not in DISK_MODES:
                raise ValueError(f"disk mode must be one of {DISK_MODES}, not {spec.mode!r}")
            if spec.rdm is not None and spec.rdm not in RDM_MODES:
                raise ValueError(f"rdm must be 'physical' or 'virtual', not {spec.rdm!r}")
        for nic in nics:
            if nic.adapter not in NIC_ADAPTERS:
                raise ValueError(f"NIC adapter must be one of {NIC_ADAPTERS}, not {nic.adapter!r}")
        si = self._si()
        content = si.RetrieveContent()
        folder = self._folder(si, folder_path)
        datacenter = content.searchIndex.FindByInventoryPath(self.datacenter)
        networks = {n.name: n for n in datacenter.network}
        for nic in nics:
            if nic.network not in networks:
                raise ValueError(f"no network {nic.network!r} in {self.datacenter} (add_network makes one)")
        cluster = next(
            e
            for e in content.viewManager.CreateContainerView(
                content.rootFolder, [vim.ClusterComputeResource], True
            ).view
        )
        controller_types = {
            "pvscsi": vim.vm.device.ParaVirtualSCSIController,
            "lsilogic": vim.vm.device.VirtualLsiLogicController,
            "sata": vim.vm.device.VirtualAHCIController,
            "nvme": vim.vm.device.VirtualNVMEController,
        }
        kinds = list(dict.fromkeys(d.controller for d in disks if d.controller != "ide"))
        changes = []
        for n, kind in enumerate(kinds):
            device = controller_types[kind](key=-(n + 1), busNumber=0)
            if isinstance(device, vim.vm.device.VirtualSCSIController):
                device.sharedBus = "noSharing"
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=device))
        config = vim.vm.ConfigSpec(
            name=name,
            guestId=guest_id,
            numCPUs=cpus,
            numCoresPerSocket=cores_per_socket,
            memoryMB=memory_mb,
            firmware=firmware,
            files=vim.vm.FileInfo(vmPathName=f"[{self.datastore}]"),
            deviceChange=changes,
        )
        if cbt:
            config.changeTrackingEnabled = True
        if secure_boot:
            config.bootOptions = vim.vm.BootOptions(efiSecureBootEnabled=True)
        task = folder.CreateVM_Task(config=config, pool=cluster.resourcePool)
        WaitForTask(task, si=si)
        vm = task.info.result
        # The VM's directory as the server named it (from the escaped name).
        vm_dir = _split_ds_path(vm.config.files.vmPathName)[1].rsplit("/", 1)[0]
        file_stem = vm_dir

        devices = list(vm.config.hardware.device)
        controllers = {}
        for kind, cls in [*controller_types.items(), ("ide", vim.vm.device.VirtualIDEController)]:
            controllers[kind] = next((d for d in devices if isinstance(d, cls) and d.busNumber == 0), None)
        ide1 = next(
            (d for d in devices if isinstance(d, vim.vm.device.VirtualIDEController) and d.busNumber == 1),
            None,
        )
        units: dict[int, int] = {}
        changes = []
        for n, spec in enumerate(disks):
            controller = controllers[spec.controller]
            unit = units.get(controller.key, 0)
            units[controller.key] = unit + 1
            ds = spec.datastore or self.datastore
            if ds != self.datastore:
                content.fileManager.MakeDirectory(
                    name=f"[{ds}] {vm_dir}", datacenter=datacenter, createParentDirectories=True
                )
            file_name = f"[{ds}] {vm_dir}/{file_stem}_{n}.vmdk"
            changes.append(
                _new_disk(
                    n,
                    controller.key,
                    unit,
                    spec.image,
                    file_name,
                    thin=spec.thin,
                    spec=spec,
                    key=2000 + n,
                    label=f"Hard disk {n + 1}",
                )
            )
        if cdrom_iso:
            cdrom = vim.vm.device.VirtualCdrom(
                key=3002,
                deviceInfo=vim.Description(label="CD/DVD drive 1", summary=f"ISO {cdrom_iso}"),
                controllerKey=ide1.key,
                unitNumber=0,
                backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=cdrom_iso),
                connectable=_connectable(cdrom_connected),
            )
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=cdrom))
        if floppy_image:
            floppy = vim.vm.device.VirtualFloppy(
                key=8000,
                deviceInfo=vim.Description(label="Floppy drive 1", summary=f"Image {floppy_image}"),
                backing=vim.vm.device.VirtualFloppy.ImageBackingInfo(fileName=floppy_image),
                connectable=_connectable(floppy_connected),
            )
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=floppy))
        for n, nic in enumerate(nics):
            changes.append(
                vim.vm.device.VirtualDeviceSpec(
                    operation="add", device=_new_nic(4000 + n, f"Network adapter {n + 1}", nic)
                )
            )
        WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)), si=si)

        created = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        if len(created) != len(disks):
            raise RuntimeError(f"{name} has {len(created)} disks, wanted {len(disks)}")
        for disk, spec in zip(created, disks, strict=True):
            if spec.rdm is not None:
                self._control("POST", "rdm", vm=vm._moId, disk=disk.key, mode=spec.rdm)
            elif spec.image is not None:
                with open(spec.image, "rb") as data:
                    self._upload(si, disk.backing.fileName, data)
        if nvram is not None:
            self._upload(si, vm.config.files.vmPathName.removesuffix(".vmx") + ".nvram", nvram)
        for n in range(snapshots):
            WaitForTask(vm.CreateSnapshot_Task(name=f"snap{n + 1}", memory=False, quiesce=False), si=si)
        if encrypted:
            self._control("POST", "encrypt", vm=vm._moId)
        if tools == "not-running":
            self._control("POST", "guest", vm=vm._moId, tools="not-running")
        if template:
            vm.MarkAsTemplate()
        if power_on:
            WaitForTask(vm.PowerOnVM_Task(), si=si)
            if tools == "running":
                self._control(
                    "POST", "guest", vm=vm._moId, tools="running", guest_id=detected_guest_id or guest_id
                )
        return f"{folder_path.rstrip('/')}/{escape_name(name)}"

    # ---- model controls (what vcsim's own methods cannot set) ----

    def add_network(self, name: str, *, vlan: int = 0) -> None:
        """A standard port group ``name`` (e.g. "DMZ") on vSwitch0 of the datacenter's first host,
        which makes it a network of the datacenter that ``NicSpec.network`` may name."""
        from pyVmomi import vim

        si = self._si()
        content = si.RetrieveContent()
        host = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True).view[0]
        spec = vim.host.PortGroup.Specification(
            name=name, vlanId=vlan, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
        )
        host.configManager.networkSystem.AddPortGroup(portgrp=spec)

    def add_datastore(self, name: str) -> str:
        """An NFS datastore ``name`` mounted on the datacenter's first host, kept in a directory of
        the workdir (removed on ``stop``); ``DiskSpec.datastore`` may name it and
        ``set_datastore_accessible`` can make it drop. Returns its moref id."""
        from pyVmomi import vim

        if self._tmpdir is None:
            raise RuntimeError("the simulator is not running")
        local = self._tmpdir / "nfs" / name
        local.mkdir(parents=True)
        si = self._si()
        content = si.RetrieveContent()
        host = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True).view[0]
        spec = vim.host.NasVolume.Specification(
            remoteHost="nfs.example.com",
            remotePath=f"/export/{name}",
            localPath=str(local),
            accessMode="readWrite",
            type="NFS",
        )
        return host.configManager.datastoreSystem.CreateNasDatastore(spec=spec)._moId

    def set_datastore_accessible(self, name: str, accessible: bool) -> None:
        """Make datastore ``name`` inaccessible (as when its NFS server drops) or accessible again:
        ``summary.accessible``, ``overallStatus`` (red/green) and ``host[].mountInfo.accessible``.
        An export of a VM with a disk on it then gets a lease that goes to ``error``
        (FileNotFound), as on vSphere."""
        self._control("POST", "datastore", name=name, accessible="true" if accessible else "false")

    def set_guest(
        self,
        vm_path: str,
        tools: str,
        *,
        guest_id: str | None = None,
        full_name: str | None = None,
        host_name: str | None = None,
        ip: str | None = None,
    ) -> None:
        """What VMware Tools in the VM report: ``tools`` ``running`` (the VM must be powered on),
        ``not-running`` or ``not-installed`` sets ``guest.toolsRunningStatus`` (guestToolsRunning /
        guestToolsNotRunning), ``guest.toolsStatus`` (toolsOk / toolsNotRunning / toolsNotInstalled),
        ``guest.toolsVersionStatus2``, ``guest.guestState`` and their ``summary.guest`` copies.
        While running, ``guest.guestId``/``guest.guestFullName`` report ``guest_id`` (default: the
        configured one) and ``full_name`` (default: vCenter's name for the id), plus
        ``guest.hostName`` and ``guest.ipAddress``; otherwise they are empty.
        Raises requests.HTTPError (409) for running tools in a VM that is not powered on."""
        params = {"vm": self.find_vm(vm_path)._moId, "tools": tools}
        for key, value in (
            ("guest_id", guest_id),
            ("full_name", full_name),
            ("host_name", host_name),
            ("ip", ip),
        ):
            if value is not None:
                params[key] = value
        self._control("POST", "guest", **params)

    def set_encrypted(
        self, vm_path: str, *, key_id: str | None = None, provider: str = "hypersdk-kms"
    ) -> None:
        """Make the VM encrypted as vCenter reports one: ``config.keyId`` (``keyId``,
        ``providerId.id``) and each flat disk's ``backing.keyId`` set (vcsim ignores
        ``ConfigSpec.crypto``)."""
        params = {"vm": self.find_vm(vm_path)._moId, "provider": provider}
        if key_id:
            params["key_id"] = key_id
        self._control("POST", "encrypt", **params)

    def deny_privilege(self, privilege: str, *, entity: str | None = None) -> None:
        """Withhold ``privilege`` (e.g. ``VApp.Export``) from the logged-in user, on the entity with
        moref id ``entity`` or everywhere. ``AuthorizationManager.HasPrivilegeOnEntities`` /
        ``HasPrivilegeOnEntity`` / ``HasUserPrivilegeOnEntities`` then answer ``isGranted=False``
        for it, ``FetchUserPrivilegeOnEntities`` leaves it out, and ExportVm of a VM it is denied
        on raises ``vim.fault.NoPermission`` (privilegeId ``VApp.Export``)."""
        params = {"deny": privilege}
        if entity:
            params["entity"] = entity
        self._control("POST", "privileges", **params)

    def reset_privileges(self) -> None:
        """Give back every privilege ``deny_privilege`` withheld."""
        self._control("POST", "privileges", reset="1")

    def _power(self, vm_path: str, state: str) -> None:
        from pyVim.task import WaitForTask

        si = self._si()
        vm = self.find_vm(vm_path, si)
        if vm.runtime.powerState == state:
            return
        task = vm.PowerOnVM_Task() if state == "poweredOn" else vm.PowerOffVM_Task()
        WaitForTask(task, si=si)

    def power_on(self, vm_path: str) -> None:
        self._power(vm_path, "poweredOn")

    def power_off(self, vm_path: str) -> None:
        self._power(vm_path, "poweredOff")

    # ---- leases ----

    def _control(self, method: str, action: str, **params: Any) -> Any:
        """One call of the simulator's test-control endpoint ``/hypersdk-sim/<action>``: its JSON
        answer; raises ``requests.HTTPError`` on a 4xx/5xx."""
        import requests

        r = requests.request(
            method,
            f"https://{self.host}/hypersdk-sim/{action}",
            params=params or None,
            verify=str(self.ca_file),
            timeout=30,
        )
        r.raise_for_status()
        return r.json() if method == "GET" else None

    def leases(self) -> list[dict]:
        """Every lease the server created, oldest first (debug endpoint)."""
        return self._control("GET", "leases")

    def drop_downloads(self, *, after: int, count: int) -> None:
        """Cut the next ``count`` NFC downloads after ``after`` bytes (fault injection)."""
        self._control("POST", "drop-downloads", after=after, count=count)

    def lease_fault(self, mode: str, *, count: int = 1) -> None:
        """The next ``count`` ExportVm calls are refused (``refuse``), or their lease goes to the
        error state (``error``) or stays initializing (``never-ready``) instead of getting ready."""
        self._control("POST", "lease-fault", mode=mode, count=count)

    def advance_clock(self, seconds: float) -> None:
        """Move the clock the leases' timeouts are measured by ``seconds`` on; a lease past its
        deadline then has timed out when this returns."""
        self._control("POST", "advance-clock", seconds=seconds)

    def lease_report(self, lease) -> dict:
        """The debug-endpoint entry for a pyvmomi HttpNfcLease."""
        for entry in self.leases():
            if entry["id"] == lease._moId:
                return entry
        raise LookupError(lease._moId)

    def absolute_url(self, device_url: str) -> str:
        """Substitute the '*' host of an HttpNfcLease device URL."""
        return device_url.replace("://*/", f"://{self.host}/", 1)

    def wait_lease(self, lease, states=("ready", "error"), timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = lease.state
            if state in states:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"lease {lease._moId} still {state}")
            time.sleep(0.05)

    def nfc_url(self, vm_path: str, si=None) -> tuple[Any, str]:
        """ExportVm on ``vm_path``, wait until ready; return (lease, absolute URL of disk 0).

        The caller should HttpNfcLeaseComplete/Abort the lease when done.
        """
        si = si or self._si()
        vm = self.find_vm(vm_path, si)
        lease = vm.ExportVm()
        if self.wait_lease(lease) != "ready":
            raise RuntimeError(f"lease failed: {lease.error}")
        return lease, self.absolute_url(lease.info.deviceUrl[0].url)
