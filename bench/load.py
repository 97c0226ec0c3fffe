"""Load benchmark: 50 concurrent exports of small disks across 2 Celery workers, and the API meanwhile.

The scale-out setup, on one machine: PostgreSQL + Redis, daphne serving the API, and two worker
processes (as two worker machines would run them, concurrency 4 each) exporting from the vSphere
test server. 50 jobs (10 of each of its 5 VMs, one small disk each) go in through one
POST /jobs/submit. Printed:
- wall time, exports per minute, MB/s, failures (target: none) and how the jobs spread over the
  workers; the reference is one export of the same disk alone, through the same daemon, from which
  the wall time perfect scaling over the worker slots would give is derived;
- GET /jobs/query and GET /jobs/{id} latency while the 50 run, beside the same requests on the idle
  daemon (same data), measured afterwards in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_POSTGRES,
    DEFAULT_REDIS,
    ensure_database,
    free_port,
    percentile,
    record,
    start_daphne,
    start_worker,
    stop,
)

from tests.vsphere_sim.harness import VSphereSimulator, make_stream_vmdk  # noqa: E402

VMS = ["/dc/vm/prod/web01", "/dc/vm/prod/web02", "/dc/vm/prod/app01", "/dc/vm/prod/db01", "/dc/vm/dev/app01"]
FINISHED = ("completed", "failed", "cancelled")


def sample_api(client, job_id: str, stop_event: threading.Event, times: list[float], limit: int = 0) -> None:
    """Alternate the two reads an operator's dashboard and `hyperctl query` make."""
    n = 0
    while not stop_event.is_set() and (not limit or n < limit):
        path = "/jobs/query?status=running&page_size=100" if n % 2 else f"/jobs/{job_id}"
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        n += 1
        time.sleep(0.05)  # a busy operator, not a flood: the load is the exports


def parent_pid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def wait_finished(job_ids: list[str], timeout: float) -> float:
    from exports.models import Job

    started = time.perf_counter()
    while Job.objects.filter(id__in=job_ids).exclude(status__in=FINISHED).exists():
        if time.perf_counter() - started > timeout:
            sys.exit(f"jobs still running after {timeout:.0f} s")
        time.sleep(0.1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="per worker process")
    parser.add_argument("--disk-mib", type=int, default=8)
    args = parser.parse_args()
    slots = args.workers * args.concurrency

    work = Path(tempfile.mkdtemp(prefix="hypersdk-bench-load-"))
    out = work / "exports"
    out.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": ensure_database(args.postgres, "hypersdk_bench_load"),
        "REDIS_URL": args.redis,
        "HYPERSDK_DATA_DIR": str(work / "data"),
        "HYPERSDK_EXPORT_ROOTS": str(out),
        # One vCenter serves all 50: let it take every worker slot.
        "HYPERSDK_MAX_CONCURRENT_EXPORTS": str(slots),
        "DJANGO_SETTINGS_MODULE": "hypersdk.settings",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    os.environ.update(env)
    import django

    django.setup()
    import httpx
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from api_tokens.service import issue_token
    from exports.models import Job, JobLog, VCenter
    from hypersdk.celery import app

    call_command("migrate", verbosity=0)
    app.control.purge()
    JobLog.objects.all().delete()
    Job.objects.all().delete()
    VCenter.objects.all().delete()
    user, _ = get_user_model().objects.get_or_create(username="bench-load", defaults={"is_superuser": True})
    token = issue_token(user)

    sim = VSphereSimulator(work / "sim").start()
    processes = []
    try:
        for n, vm in enumerate(VMS):
            sim.seed_disks(vm, [make_stream_vmdk(work / f"seed{n}.vmdk", args.disk_mib)])
        vcenter = VCenter(name="sim", url=sim.url, username=sim.username, ca_bundle=sim.ca_file.read_text())
        vcenter.password = sim.password
        vcenter.save()

        port = free_port()
        processes.append(start_daphne(env, port, work / "daphne.log"))
        for n in range(args.workers):
            processes.append(start_worker(env, args.concurrency, work / f"worker{n}.log", name=f"load{n}"))
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {token}"}, timeout=60
        )

        def submit(specs: list[dict]) -> list[str]:
            response = client.post("/jobs/submit", json={"jobs": specs})
            response.raise_for_status()
            return response.json()["job_ids"]

        # Reference: one export alone (the second of two: the first warms the workers).
        alone = []
        for attempt in range(2):
            ids = submit([{"vm_path": VMS[0], "output_path": str(out / f"alone{attempt}"), "vcenter": "sim"}])
            alone.append(wait_finished(ids, 600))
        alone_seconds = alone[-1]

        # The load: 50 exports in one batch, the API sampled until they are all done.
        specs = [
            {"vm_path": VMS[n % len(VMS)], "output_path": str(out / f"load{n:02}"), "vcenter": "sim"}
            for n in range(args.jobs)
        ]
        loaded: list[float] = []
        done = threading.Event()
        started = time.perf_counter()
        job_ids = submit(specs)
        sampler = threading.Thread(target=sample_api, args=(client, job_ids[-1], done, loaded))
        sampler.start()
        wait_finished(job_ids, 3600)
        wall = time.perf_counter() - started  # from before the submit: it is part of the load
        done.set()
        sampler.join()
        # Job.worker is "host:pid" of the pool process; its parent is one of our worker processes.
        node_of = {process.pid: f"worker{n}" for n, process in enumerate(processes[1:])}
        spread = Counter(
            node_of.get(parent_pid(int(name.rsplit(":", 1)[1])), "?")
            for name in Job.objects.filter(id__in=job_ids).values_list("worker", flat=True)
        )

        # The same reads on the idle daemon, same data.
        idle: list[float] = []
        sample_api(client, job_ids[-1], threading.Event(), idle, limit=max(len(loaded), 100))
    finally:
        for process in reversed(processes):
            stop(process)
        sim.stop()

    jobs = Job.objects.filter(id__in=job_ids)
    statuses = Counter(jobs.values_list("status", flat=True))
    failures = args.jobs - statuses.get("completed", 0)
    total_bytes = sum(job.result["total_bytes"] for job in jobs if job.result)
    durations = [job.duration_seconds for job in jobs if job.duration_seconds is not None]
    ideal = alone_seconds * args.jobs / slots
    print(
        f"load: {args.jobs} exports of {args.disk_mib} MiB disks, {args.workers} workers x {args.concurrency} "
        f"slots, PostgreSQL + Redis"
    )
    print(
        f"  statuses {dict(statuses)}; failures {failures} (target: none); spread over workers {dict(spread)}"
    )
    print(
        f"  wall {wall:.1f} s, {args.jobs / wall * 60:.0f} exports/min, {total_bytes / wall / 2**20:.1f} MB/s; "
        f"per-export run time median {statistics.median(durations):.1f} s"
    )
    print(
        f"  reference: one export alone {alone_seconds:.2f} s; perfect scaling over {slots} slots would take "
        f"{ideal:.1f} s (ratio {wall / ideal:.2f})"
    )
    p95_loaded, p95_idle = percentile(loaded, 0.95) * 1000, percentile(idle, 0.95) * 1000
    print(
        f"  API under load: {len(loaded)} requests, p50 {percentile(loaded, 0.5) * 1000:.1f} ms, "
        f"p95 {p95_loaded:.1f} ms; idle (same data) p50 {percentile(idle, 0.5) * 1000:.1f} ms, "
        f"p95 {p95_idle:.1f} ms; ratio {p95_loaded / p95_idle:.2f}"
    )
    record(
        "load",
        f"{args.jobs} concurrent exports, {args.workers} workers",
        f"{wall:.1f} s, {failures} failed",
        reference=f"1 alone {alone_seconds:.2f} s x {args.jobs}/{slots} = {ideal:.1f} s",
        ratio=wall / ideal,
        target="no failures",
        met=failures == 0,
    )
    record(
        "load",
        "API p95 during the 50 exports",
        f"{p95_loaded:.1f} ms",
        reference=f"idle {p95_idle:.1f} ms",
        ratio=p95_loaded / p95_idle,
    )
    sys.exit(0 if failures == 0 else 1)


if __name__ == "__main__":
    main()
