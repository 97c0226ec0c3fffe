"""Shared fixtures: real VMDKs made with qemu-img and a real vSphere API (the simulator)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exports.pipeline.download import DownloadedDisk
from exports.pipeline.files import sha256_file
from exports.pipeline.manifest import VMFacts, build_manifest, write_manifest
from tests.vsphere_sim.harness import SimulatorUnavailable, VSphereSimulator, make_stream_vmdk

APP01 = "/dc/vm/prod/app01"


def start_simulator(workdir: Path, **options) -> VSphereSimulator:
    """Start a vSphere test server; the suite fails loudly, never skips, if it cannot."""
    try:
        return VSphereSimulator(workdir, **options).start()
    except SimulatorUnavailable as exc:
        pytest.fail(f"the vSphere simulator is required and could not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def vsphere(tmp_path_factory) -> VSphereSimulator:
    sim = start_simulator(tmp_path_factory.mktemp("vsphere"))
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def app01_seeds(vsphere, tmp_path_factory) -> list[Path]:
    """app01 holds two disks of random data; their raw seeds sit beside the VMDKs."""
    seeds = tmp_path_factory.mktemp("app01-seeds")
    images = [
        make_stream_vmdk(seeds / "app01-disk1.vmdk", 24),
        make_stream_vmdk(seeds / "app01-disk2.vmdk", 12),
    ]
    vsphere.seed_disks(APP01, images)
    return images


@pytest.fixture(scope="session")
def slow_vsphere(tmp_path_factory):
    """A host serving 4 MiB/s with a 3 s lease timeout: db01's download outlives the lease twice."""
    sim = start_simulator(tmp_path_factory.mktemp("slow"), lease_timeout=3, nfc_rate=4 << 20)
    image = make_stream_vmdk(tmp_path_factory.mktemp("slow-seed") / "db01-disk1.vmdk", 24)
    sim.seed_disks("/dc/vm/prod/db01", [image])
    yield sim, image
    sim.stop()


def govc_environment(sim: VSphereSimulator) -> dict[str, str]:
    return {
        "GOVC_URL": sim.url,
        "GOVC_USERNAME": sim.username,
        "GOVC_PASSWORD": sim.password,
        "GOVC_TLS_CA_CERTS": str(sim.ca_file),
    }


@pytest.fixture
def govc_env(vsphere, monkeypatch) -> dict[str, str]:
    """GOVC_* pointing at the session's simulator, in this process's environment too."""
    env = govc_environment(vsphere)
    monkeypatch.delenv("GOVC_INSECURE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def exported_disks(tmp_path) -> list[DownloadedDisk]:
    """Two streamOptimized VMDKs of random data as if just downloaded (seeds kept as .raw)."""
    out = tmp_path / "export"
    disks = []
    for index, size_mib in enumerate((6, 3), start=1):
        vmdk = make_stream_vmdk(tmp_path / "seeds" / f"app01-disk{index}.vmdk", size_mib)
        dest = out / vmdk.name
        dest.parent.mkdir(exist_ok=True)
        os.link(vmdk, dest)
        disks.append(
            DownloadedDisk(f"200{index}", dest, dest.stat().st_size, sha256_file(dest), size_mib << 20)
        )
    return disks


@pytest.fixture
def write_test_manifest():
    def write(disks: list[DownloadedDisk], target: str = "qcow2") -> dict:
        output_dir = disks[0].path.parent
        facts = VMFacts("app01", "vm-42", "dc", 2, 3000, "bios", "otherLinux64Guest", [])
        document = build_manifest(
            vm=facts,
            vm_path="/dc/vm/prod/app01",
            vcenter="vc.example",
            exported_at=datetime(2026, 1, 22, 10, 30, tzinfo=UTC),
            disks=disks,
            output_dir=output_dir,
            package_format="ovf",
            package_file="app01.ovf",
            compressed=False,
            target_format=target,
            verify_checksums=True,
        )
        write_manifest(output_dir, document)
        return document

    return write


def seed_of(path: Path | str) -> Path:
    """The raw image a test VMDK was made from."""
    name = Path(path).name.split(".")[0]
    return Path(path).parent.parent / "seeds" / f"{name}.raw"
