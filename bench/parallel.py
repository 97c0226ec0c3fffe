"""Parallel disk downloads: a 4-disk VM exported with `-parallel 4` against `-parallel 1`.

A real NFC stream runs at roughly 30 MB/s, so a multi-disk VM exports fast only when its
disks download at once. The vSphere test server is given a per-download rate limit
(``--rate-mib`` MiB/s per NFC URL, default 40); one VM holds 4 disks of random data
(``--size-mib`` each, default 256). Both settings run in the same session, alternating,
``--runs`` times; the medians and the ratio parallel/serial are printed (target <= 0.35).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import disk_image, govc_env, hyperexport_program, record, work_directory  # noqa: E402

from tests.vsphere_sim.harness import DiskSpec, VSphereSimulator  # noqa: E402

TARGET = 0.35


def export_seconds(hyperexport: str, env: dict[str, str], vm: str, out: Path, parallel: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [hyperexport, "-vm", vm, "-output", str(out), "-parallel", str(parallel), "-quiet"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(out)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rate-mib", type=int, default=40)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    image = disk_image(args.size_mib)
    work = work_directory()
    sim = VSphereSimulator(work / "sim", nfc_rate=args.rate_mib << 20).start()
    try:
        vm = sim.create_vm("/dc/vm/bench", "four-disks", [DiskSpec(image) for _ in range(4)])
        env = govc_env(sim)
        hyperexport = hyperexport_program()
        times: dict[int, list[float]] = {4: [], 1: []}
        for run in range(args.runs):
            for parallel in (4, 1):
                times[parallel].append(
                    export_seconds(hyperexport, env, vm, work / f"p{parallel}-{run}", parallel)
                )
        serial, parallel = statistics.median(times[1]), statistics.median(times[4])
        size = image.stat().st_size
        ratio = parallel / serial
        print(
            f"4 disks x {size / 2**20:.0f} MiB, NFC limited to {args.rate_mib} MiB/s per URL; "
            f"{args.runs} runs each, alternating; medians"
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
