"""Parallel disk downloads: a 4-disk VM exported with `-parallel 4` against `-parallel 1`.

A real NFC stream runs at roughly 30 MB/s, so a multi-disk VM exports fast only when its
disks download at once. The vSphere test server is given a per-download rate limit
(``--rate-mib`` MiB/s per NFC URL, default 40); one VM holds 4 disks of random data
(``--size-mib`` each, default 256). Both settings run in the same session, alternating,
``--runs`` times (at least 3, ``common.alternate``: order rotated, dirty pages written back and
the page cache dropped before each run); the medians and the ratio parallel/serial are printed
(target <= 0.35).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    alternate,
    disk_image,
    govc_env,
    hyperexport_program,
    record,
    run_measured,
    work_directory,
)

from tests.vsphere_sim.harness import DiskSpec, VSphereSimulator  # noqa: E402

TARGET = 0.35


def export_seconds(hyperexport: str, env: dict[str, str], vm: str, out: Path, parallel: int) -> float:
    try:
        command = [hyperexport, "-vm", vm, "-output", str(out), "-parallel", str(parallel), "-quiet"]
        return run_measured(command, env=env).wall
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rate-mib", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    image = disk_image(args.size_mib)
    work = work_directory()
    sim = VSphereSimulator(work / "sim", nfc_rate=args.rate_mib << 20).start()
    try:
        vm = sim.create_vm("/dc/vm/bench", "four-disks", [DiskSpec(image) for _ in range(4)])
        env = govc_env(sim)
        hyperexport = hyperexport_program()
        times = alternate(
            {p: partial(export_seconds, hyperexport, env, vm, work / f"p{p}", p) for p in (4, 1)}, args.runs
        )
        serial, parallel = statistics.median(times[1]), statistics.median(times[4])
        size = image.stat().st_size
        ratio = parallel / serial
        print(
            f"4 disks x {size / 2**20:.0f} MiB, NFC limited to {args.rate_mib} MiB/s per URL; "
            f"{len(times[1])} runs each, order rotated; medians"
        )
        print(f"-parallel 1: {serial:.2f} s  ({4 * size / serial / 2**20:.0f} MiB/s)")
        print(f"-parallel 4: {parallel:.2f} s  ({4 * size / parallel / 2**20:.0f} MiB/s)")
        print(f"ratio -parallel 4 / -parallel 1: {ratio:.2f}  (target <= {TARGET})")
        record(
            "export",
            f"4 disks, {args.rate_mib} MiB/s per NFC URL, -parallel 4",
            f"{parallel:.2f} s",
            reference=f"-parallel 1 {serial:.2f} s",
            ratio=ratio,
            target=f"<= {TARGET}",
            met=ratio <= TARGET,
        )
        if ratio > TARGET:
            sys.exit(1)
    finally:
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
