"""Export benchmark: our whole `hyperexport` process against `curl -o` of the same NFC URL.

Each contender runs in its own child process against the vSphere test server, the order rotated
every round, ``--runs`` rounds (median of at least 3), with dirty pages written back and the page
cache dropped before every run (``common.alternate``). Printed per place (the project's disk and a
tmpfs): median wall seconds and the ratio ours/curl (target <= 1.6, with SHA-256 computed inline
and fsync before rename; the ratio against `curl -o` + `sync` of the file, the same durability,
beside it), the CPU seconds per GiB, user and system, of each (target: ours <= 2.5 s/GiB; CPU
time stays meaningful on a busy machine), and our peak RSS (target < 150 MB). Then qemu-img
conversion through our pipeline against the same `qemu-img convert` typed by hand, alternated
the same way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import django  # noqa: E402
from common import (  # noqa: E402
    Usage,
    alternate,
    disk_image,
    govc_env,
    hyperexport_program,
    medians,
    record,
    run_measured,
    settle,
    work_directory,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
django.setup()

from exports.pipeline.convert import convert_export  # noqa: E402
from exports.pipeline.progress import CancelToken, NullReporter  # noqa: E402
from tests.vsphere_sim.harness import VSphereSimulator  # noqa: E402

VM = "/dc/vm/prod/app01"
WALL_TARGET = 1.6
CPU_TARGET = 2.5  # CPU seconds (user + system) per GiB
RSS_TARGET_MB = 150


def export_contenders(sim, env: dict[str, str], hyperexport: str, where: Path):
    """The three ways to fetch the disk, each a callable that cleans up after itself."""

    def curl(durable: bool):
        def run() -> Usage:
            lease, url = sim.nfc_url(VM)
            target = where / "curl.vmdk"
            command = ["curl", "-sS", "--fail", "--cacert", str(sim.ca_file), "-o", str(target), url]
            if durable:  # hyperexport fsyncs before it calls a disk complete; curl never does
                command = ["sh", "-c", f'"$@" && sync {target}', "curl", *command]
            try:
                return run_measured(command)
            finally:
                target.unlink(missing_ok=True)
                lease.HttpNfcLeaseComplete()

        return run

    def ours() -> Usage:
        out = where / "ours"
        try:
            return run_measured([hyperexport, "-vm", VM, "-output", str(out), "-quiet"], env=env)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    return {"curl -o": curl(False), "curl -o + sync": curl(True), "hyperexport": ours}


def per_gib(seconds: float, size: int) -> float:
    return seconds / (size / 2**30)


def compare_exports(label: str, results: dict[str, list[Usage]], size: int) -> None:
    walls = medians({name: [u.wall for u in usages] for name, usages in results.items()})
    ours = walls["hyperexport"]
    print(
        f"[{label}] median wall: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in walls.items())
    )
    for name, usages in results.items():
        user = per_gib(statistics.median(u.user for u in usages), size)
        system = per_gib(statistics.median(u.system for u in usages), size)
        cpu = per_gib(statistics.median(u.cpu for u in usages), size)
        print(
            f"[{label}] {name:15} CPU per GiB: user {user:.2f} s, system {system:.2f} s, "
            f"user+system {cpu:.2f} s; walls {', '.join(f'{u.wall:.2f}' for u in usages)}"
        )
    for reference, suffix, target in (("curl -o", "", WALL_TARGET), ("curl -o + sync", ", durable", None)):
        ratio = ours / walls[reference]
        print(
            f"[{label}] ratio hyperexport / {reference}: {ratio:.2f}"
            + (f"  (target <= {target})" if target else "  (the same durability: fsync)")
        )
        record(
            "export",
            f"{size >> 20} MiB disk, {label}{suffix}",
            f"{ours:.2f} s",
            reference=f"{reference} {walls[reference]:.2f} s",
            ratio=ratio,
            target=f"<= {target}" if target else "",
            met=ratio <= target if target else None,
        )
    cpu = per_gib(statistics.median(u.cpu for u in results["hyperexport"]), size)
    curl_cpu = per_gib(statistics.median(u.cpu for u in results["curl -o"]), size)
    record(
        "export",
        f"hyperexport CPU per GiB, {label}",
        f"{cpu:.2f} s",
        reference=f"curl -o {curl_cpu:.2f} s",
        ratio=cpu / curl_cpu,
        target=f"<= {CPU_TARGET} s",
        met=cpu <= CPU_TARGET,
    )


def compare_conversions(image: Path, work: Path, runs: int) -> None:
    """Our pipeline's qemu-img step against `qemu-img convert` typed by hand, alternated, each
    run starting from written-back, uncached files: run one after the other without that, the
    second paid for the writeback of the first one's output (docs/testing.md, Benchmarks). The
    pipeline's step also hashes its output, which the hand run does not."""
    conv = work / "conv"
    source = conv / "app01-disk1.vmdk"
    conv.mkdir()
    shutil.copyfile(image, source)

    def by_hand() -> float:
        output = work / "hand.qcow2"
        try:
            command = ["qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", str(source), str(output)]
            return run_measured(command).wall
        finally:
            output.unlink(missing_ok=True)

    def pipeline() -> float:
        manifest = {
            "output": {"directory": str(conv / "converted"), "format": "qcow2"},
            "disks": [
                {
                    "id": "app01-disk1",
                    "path": source.name,
                    "local_path": str(source),
                    "size": source.stat().st_size,
                }
            ],
        }
        try:
            report = convert_export(
                manifest,
                conv,
                hyper2kvm=None,
                timeout_seconds=3600,
                compress=False,
                reporter=NullReporter(),
                cancel=CancelToken(),
            )
            return report.outputs[0].duration_seconds
        finally:
            shutil.rmtree(conv / "converted", ignore_errors=True)

    results = alternate({"qemu-img by hand": by_hand, "our pipeline's step": pipeline}, runs)
    hand, step = (statistics.median(values) for values in results.values())
    print(
        "qcow2 conversion, median wall: "
        + "; ".join(
            f"{name} {statistics.median(v):.2f} s ({', '.join(f'{s:.2f}' for s in v)})"
            for name, v in results.items()
        )
        + f"; ratio {step / hand:.2f}"
    )
    record(
        "convert",
        "qcow2 conversion step",
        f"{step:.2f} s",
        reference=f"qemu-img by hand {hand:.2f} s",
        ratio=step / hand,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-conversion", action="store_true")
    args = parser.parse_args()

    image = disk_image(args.size_mib)
    work = work_directory()
    sim = VSphereSimulator(work / "sim").start()
    try:
        sim.seed_disks(VM, [image])
        env = govc_env(sim)
        hyperexport = hyperexport_program()
        size = image.stat().st_size
        print(
            f"disk: {size / 2**20:.0f} MiB streamOptimized; {max(args.runs, 3)} runs of each, order rotated, "
            "sync + page cache dropped before each; medians"
        )
        places = [("project disk", work)]
        if Path("/dev/shm").is_dir():
            places.append(("tmpfs", Path(tempfile.mkdtemp(prefix="hypersdk-bench-", dir="/dev/shm"))))
        peak_rss: list[int] = []
        try:
            for label, where in places:
                results = alternate(export_contenders(sim, env, hyperexport, where), args.runs)
                compare_exports(label, results, size)
                peak_rss += [u.max_rss_kib for u in results["hyperexport"]]
        finally:
            for _, where in places[1:]:
                shutil.rmtree(where, ignore_errors=True)
        peak = max(peak_rss) / 1024
        print(f"hyperexport peak RSS: {peak:.0f} MB  (target < {RSS_TARGET_MB} MB)")
        record(
            "export",
            "hyperexport peak RSS",
            f"{peak:.0f} MB",
            target=f"< {RSS_TARGET_MB} MB",
            met=peak < RSS_TARGET_MB,
        )
        if not args.skip_conversion:
            compare_conversions(image, work, args.runs)
    finally:
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)
        settle()


if __name__ == "__main__":
    main()
