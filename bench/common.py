"""What every benchmark shares: the bench database, percentiles, child processes, the results file,
and the one way to compare two things (``alternate``: rotated order, repeats, medians, ``settle``
before every run).

Each benchmark prints its own detail and also records its headline figures with ``record``;
``bench/summary.py`` prints them as one table at the end of ``make bench``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests.processes import daphne_command, free_port  # noqa: E402,F401 - free_port: the benchmarks' one copy
from tests.processes import stop_process as stop  # noqa: E402,F401

BENCH_DB = "hypersdk_bench"
DEFAULT_POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DEFAULT_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def ensure_database(admin_url: str, name: str = BENCH_DB) -> str:
    """The bench's own PostgreSQL database (created once), so no real data is ever touched."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


MIN_RUNS = 3
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
_cache_note: list[str] = []


def settle() -> None:
    """Bring the machine back to the same state before a measured run: dirty pages written back
    (``sync``) and the clean page cache dropped (as root), so no run pays for the writeback, or
    profits from the cache, of the run before it."""
    os.sync()
    if _cache_note:
        return
    try:
        DROP_CACHES.write_text("1\n")
    except OSError as exc:  # not root, or /proc/sys read-only in a container: sync only
        _cache_note.append(f"page cache not dropped between runs ({DROP_CACHES}: {exc.strerror})")
        print(f"note: {_cache_note[0]}; dirty pages are still written back (sync)", flush=True)


K = TypeVar("K")
T = TypeVar("T")


def alternate(
    contenders: dict[K, Callable[[], T]],
    runs: int = MIN_RUNS,
    *,
    before: Callable[[], None] | None = settle,
) -> dict[K, list[T]]:
    """Run each contender ``runs`` times (at least ``MIN_RUNS``), the order rotated every round
    (A B, B A, A B, ...) and ``before`` (``settle``) called before every run: a figure then
    does not depend on which of the two ran first. Returns each contender's results in order."""
    names = list(contenders)
    results: dict[K, list[T]] = {name: [] for name in names}
    for round_ in range(max(runs, MIN_RUNS)):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if before is not None:
                before()
            results[name].append(contenders[name]())
    return results


def medians(results: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in results.items()}


@dataclass(frozen=True)
class Usage:
    """What one whole child process cost: wall seconds, CPU seconds (its own and its waited-for
    children's, from wait4), and its peak RSS in KiB."""

    wall: float
    user: float
    system: float
    max_rss_kib: int

    @property
    def cpu(self) -> float:
        return self.user + self.system


# Runs the command and writes its usage as JSON to the file named first. A child forked from this
# (large) benchmark process would inherit its peak RSS through exec: wait4 would report the
# benchmark's size, not the command's. Forked from this small launcher, it reports its own.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
process = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
figures = [time.perf_counter() - started, usage.ru_utime, usage.ru_stime, usage.ru_maxrss]
with open(sys.argv[1], "w") as out:
    json.dump([os.waitstatus_to_exitcode(status), figures], out)
"""


def run_measured(command: Sequence[str], *, env: dict[str, str] | None = None) -> Usage:
    """Run ``command`` (stdout discarded) and measure it; exit the benchmark if it fails. CPU
    time stays meaningful on a busy machine, where wall time does not."""
    with tempfile.NamedTemporaryFile(prefix="hypersdk-bench-usage-", suffix=".json") as usage:
        subprocess.run([sys.executable, "-c", _LAUNCHER, usage.name, *command], env=env, check=True)
        status, figures = json.loads(Path(usage.name).read_text())
    if status != 0:
        raise SystemExit(f"benchmark command failed (exit {status}): {' '.join(command)}")
    return Usage(*figures)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _wait_started(process: subprocess.Popen, log_path: Path, ready, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"{what} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def start_daphne(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            daphne_command(port), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    _wait_started(process, log_path, answers, "daphne", 60)
    return process


def start_worker(
    env: dict[str, str], concurrency: int, log_path: Path, *, name: str, queues: str = ""
) -> subprocess.Popen:
    """A real Celery worker, as an operator would start one on a worker machine."""
    command = [
        sys.executable, "-m", "celery", "-A", "hypersdk", "worker", "-l", "info",
        "--concurrency", str(concurrency), "-n", f"{name}@{socket.gethostname()}",
        "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if queues:
        command += ["-Q", queues]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    _wait_started(process, log_path, lambda: " ready." in log_path.read_text(errors="replace"), name, 120)
    return process


def record(
    bench: str,
    figure: str,
    value: str,
    *,
    reference: str = "",
    ratio: float | None = None,
    target: str = "",
    met: bool | None = None,
) -> None:
    """Append one headline figure to $BENCH_RESULTS (a JSON-lines file) for the summary table."""
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    row = {
        "bench": bench,
        "figure": figure,
        "value": value,
        "reference": reference,
        "ratio": None if ratio is None else round(ratio, 2),
        "target": target,
        "met": met,
    }
    with open(path, "a", encoding="utf-8") as results:
        results.write(json.dumps(row) + "\n")


# The simulator's cache: the benchmarks' disk images are kept beside its binary.
CACHE = Path(os.environ.get("HYPERSDK_SIM_CACHE", Path.home() / ".cache" / "hypersdk"))


def disk_image(size_mib: int) -> Path:
    """A streamOptimized VMDK of random data, made once and cached (qemu-img takes a while)."""
    from tests.vsphere_sim.harness import make_stream_vmdk

    image = CACHE / f"bench-{size_mib}MiB.vmdk"
    if not image.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"making a {size_mib} MiB random-data VMDK (once)...", flush=True)
        made = make_stream_vmdk(CACHE / f"bench-{size_mib}MiB.tmp.vmdk", size_mib)
        made.with_suffix(".raw").unlink()
        made.rename(image)
    return image


def work_directory() -> Path:
    """A fresh directory for one benchmark run, under ``var/`` when the checkout has one."""
    return Path(
        tempfile.mkdtemp(prefix="hypersdk-bench-", dir=ROOT / "var" if (ROOT / "var").is_dir() else None)
    )


def govc_env(sim) -> dict[str, str]:
    """This process's environment, pointing the CLIs at the vSphere test server ``sim``."""
    return dict(
        os.environ,
        GOVC_URL=sim.url,
        GOVC_USERNAME=sim.username,
        GOVC_PASSWORD=sim.password,
        GOVC_TLS_CA_CERTS=str(sim.ca_file),
    )


def hyperexport_program() -> str:
    """The ``hyperexport`` on PATH, else this checkout's."""
    return shutil.which("hyperexport") or str(ROOT / ".venv" / "bin" / "hyperexport")


def api_against_orm(
    bench: str, what: str, figure: str, api_times: list[float], orm_times: list[float], target_ms: int
) -> None:
    """Print the API's p50/p95 for ``what`` beside the bare ORM's p95 (the same page), and record
    the API's p95 as ``figure`` against the target."""
    p95, orm_p95 = percentile(api_times, 0.95) * 1000, percentile(orm_times, 0.95) * 1000
    print(
        f"{what}: p50 {percentile(api_times, 0.5) * 1000:.1f} ms, p95 {p95:.1f} ms (target <= {target_ms} ms); "
        f"the same page by the bare ORM p95 {orm_p95:.1f} ms; ratio {p95 / orm_p95:.1f}"
    )
    record(
        bench,
        figure,
        f"{p95:.1f} ms",
        reference=f"bare ORM {orm_p95:.1f} ms",
        ratio=p95 / orm_p95,
        target=f"<= {target_ms} ms",
        met=p95 <= target_ms,
    )
