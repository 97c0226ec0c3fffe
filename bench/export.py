"""Export benchmark: our whole `hyperexport` process against `curl -o` of the same NFC URL.

Both run in this process's session against the vSphere test server, alternating, several
times; the figures printed are medians and the ratio ours/curl (target <= 1.6, with SHA-256
computed inline and fsync before rename), plus our peak RSS (target < 150 MB) and
qemu-img conversion through our pipeline against the same `qemu-img convert` typed by hand.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
django.setup()

from exports.pipeline.convert import convert_export  # noqa: E402
from exports.pipeline.progress import CancelToken, NullReporter  # noqa: E402
from tests.vsphere_sim.harness import VSphereSimulator, make_stream_vmdk  # noqa: E402

VM = "/dc/vm/prod/app01"
CACHE = Path(os.environ.get("HYPERSDK_SIM_CACHE", Path.home() / ".cache" / "hypersdk"))


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one whole child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(command)}")
    return elapsed, usage.ru_maxrss


def disk_image(size_mib: int) -> Path:
    """A streamOptimized VMDK of random data, made once and cached (qemu-img takes a while)."""
    image = CACHE / f"bench-{size_mib}MiB.vmdk"
    if not image.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"making a {size_mib} MiB random-data VMDK (once)...", flush=True)
        made = make_stream_vmdk(CACHE / f"bench-{size_mib}MiB.tmp.vmdk", size_mib)
        made.with_suffix(".raw").unlink()
        made.rename(image)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    image = disk_image(args.size_mib)
    work = Path(
        tempfile.mkdtemp(prefix="hypersdk-bench-", dir=ROOT / "var" if (ROOT / "var").is_dir() else None)
    )
    sim = VSphereSimulator(work / "sim").start()
    try:
        sim.seed_disks(VM, [image])
        env = dict(
            os.environ,
            GOVC_URL=sim.url,
            GOVC_USERNAME=sim.username,
            GOVC_PASSWORD=sim.password,
            GOVC_TLS_CA_CERTS=str(sim.ca_file),
        )
        hyperexport = shutil.which("hyperexport") or str(ROOT / ".venv" / "bin" / "hyperexport")
        curl_times, ours_times, rss = [], [], []
        for run in range(args.runs):
            lease, url = sim.nfc_url(VM)
            target = work / f"curl-{run}.vmdk"
            seconds, _ = timed(
                ["curl", "-sS", "--fail", "--cacert", str(sim.ca_file), "-o", str(target), url]
            )
            curl_times.append(seconds)
            lease.HttpNfcLeaseComplete()
            target.unlink()
            out = work / f"ours-{run}"
            seconds, peak = timed([hyperexport, "-vm", VM, "-output", str(out), "-quiet"], env)
            ours_times.append(seconds)
            rss.append(peak)
            shutil.rmtree(out)
        curl_median, ours_median = statistics.median(curl_times), statistics.median(ours_times)
        size = image.stat().st_size
        print(f"disk: {size / 2**20:.0f} MiB streamOptimized, {args.runs} runs each, medians")
        print(f"curl -o:      {curl_median:6.2f} s  ({size / curl_median / 2**20:6.0f} MiB/s)")
        print(f"hyperexport:  {ours_median:6.2f} s  ({size / ours_median / 2**20:6.0f} MiB/s, whole process)")
        print(f"ratio hyperexport/curl: {ours_median / curl_median:.2f}  (target <= 1.6)")
        print(f"hyperexport peak RSS:   {max(rss) / 1024:.0f} MB  (target < 150 MB)")

        # Conversion: our pipeline's qemu-img step against the same conversion typed by hand.
        source = work / "conv" / "app01-disk1.vmdk"
        source.parent.mkdir()
        shutil.copyfile(image, source)
        by_hand = timed(
            ["qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", str(source), str(work / "hand.qcow2")]
        )[0]
        manifest = {
            "output": {"directory": str(work / "conv" / "converted"), "format": "qcow2"},
            "disks": [{"id": "app01-disk1", "path": source.name, "local_path": str(source)}],
        }
        started = time.perf_counter()
        convert_export(
            manifest,
            work / "conv",
            hyper2kvm=None,
            timeout_seconds=3600,
            compress=False,
            reporter=NullReporter(),
            cancel=CancelToken(),
        )
        ours_convert = time.perf_counter() - started
        print(
            f"qcow2 conversion: qemu-img by hand {by_hand:.2f} s; our pipeline {ours_convert:.2f} s "
            f"(ratio {ours_convert / by_hand:.2f}; ours also hashes the output for the report)"
        )
    finally:
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
