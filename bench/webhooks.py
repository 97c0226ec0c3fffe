"""Webhook delivery benchmark: 1,000 ``job.completed`` events to a receiver on loopback.

A real Celery worker on the webhooks queue (as the daemon's webhook worker, same concurrency)
delivers them from PostgreSQL and Redis: drainer tasks claim deliveries, sign them, POST them through the SSRF-guarded helper and
record each outcome.
Printed: what emitting costs the job (per event), deliveries per second and the time to drain
POST durations, beside a reference measured in the same run against the same receiver: the
same 1,000 signed bodies POSTed by a plain httpx loop. Target: >= 200 deliveries/s.
"""

from __future__ import annotations

import argparse
import http.server
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_POSTGRES,
    DEFAULT_REDIS,
    ensure_database,
    percentile,
    record,
    start_worker,
    stop,
)

TARGET_PER_SECOND = 200
WORKER = "bench-webhooks"


def serve(port_pipe) -> None:
    """The receiver, in its own process so it never shares a GIL with what it measures."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_pipe.send(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, help="webhook worker processes (default: the daemon's)")
    parser.add_argument("--drainers", type=int, help="HYPERSDK_WEBHOOK_DRAINERS (default: the setting's)")
    args = parser.parse_args()

    receiver_end, bench_end = multiprocessing.Pipe()
    receiver = multiprocessing.Process(target=serve, args=(receiver_end,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{bench_end.recv()}/hook"

    os.environ["DATABASE_URL"] = ensure_database(args.postgres)
    os.environ["REDIS_URL"] = args.redis
    os.environ["HYPERSDK_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    if args.drainers:
        os.environ["HYPERSDK_WEBHOOK_DRAINERS"] = str(args.drainers)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
    import django

    django.setup()
    import httpx
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Count

    from exports.models import Job
    from hypersdk.celery import app
    from hypersdk.lib import events
    from webhooks import conf, payloads, service, signing
    from webhooks.models import Webhook, WebhookDelivery

    concurrency = args.concurrency or conf.worker_concurrency()
    call_command("migrate", verbosity=0)
    app.control.purge()
    WebhookDelivery.objects.all().delete()
    Webhook.objects.all().delete()
    webhook, secret = service.add_webhook(url, ["job.completed"])
    job = Job.objects.create(
        vm_path="/dc/vm/prod/app01",
        output_path="/exports/app01",
        status=Job.Status.COMPLETED,
        result={
            "vm_name": "app01",
            "files": [{"name": "app01-disk1.vmdk", "size": 1 << 30, "sha256": "0" * 64}],
        },
    )
    data = job.as_event()

    # Reference: the same signed bodies, POSTed one after another by a plain httpx client.
    body = payloads.body("job.completed", payloads.event_data("job.completed", data)).encode()
    with httpx.Client(timeout=10) as client:
        client.post(url, content=body)  # connect once, as the worker's pool does
        started = time.perf_counter()
        for n in range(args.events):
            headers = signing.signed_headers(secret, f"msg_ref{n}", int(time.time()), body)
            assert client.post(url, content=body, headers=headers).status_code == 200
        reference = time.perf_counter() - started

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryDirectory() as scratch:
        # The daemon's webhook worker: it consumes the webhooks queue only.
        queue = settings.HYPERSDK_WEBHOOK_QUEUE
        worker = start_worker(env, concurrency, Path(scratch) / "worker.log", name=WORKER, queues=queue)
        destination = [f"{WORKER}@{socket.gethostname()}"]
        try:
            for _ in range(4 * concurrency):  # warm the pool processes' connections
                events.emit("job.completed", data)
            while WebhookDelivery.objects.filter(status="pending").exists():
                time.sleep(0.05)
            WebhookDelivery.objects.all().delete()

            # 1. What emitting costs a job: the worker is told to stop taking messages meanwhile.
            app.control.cancel_consumer(queue, destination=destination, reply=True)
            started = time.perf_counter()
            for _ in range(args.events):
                events.emit("job.completed", data)
            emitted = time.perf_counter() - started

            # 2. Draining 1,000 queued deliveries: signed, POSTed, each outcome recorded.
            started = time.perf_counter()
            app.control.add_consumer(queue, destination=destination, reply=True)
            while WebhookDelivery.objects.filter(status="pending").exists():
                time.sleep(0.02)
            drained = time.perf_counter() - started
        finally:
            stop(worker)
            receiver.terminate()

    outcome = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("id")).order_by())
    durations = [ms for ms in WebhookDelivery.objects.values_list("duration_ms", flat=True) if ms is not None]
    rate = args.events / drained
    print(
        f"webhook delivery: {args.events} job.completed events, worker concurrency {concurrency}, "
        f"{conf.drainers()} drainers"
    )
    print(
        f"  emit (what a job pays)     {emitted / args.events * 1e6:8.0f} us/event   ({emitted:.2f} s in all)"
    )
    print(f"  drain 1,000 queued         {drained:8.2f} s          {rate:8.0f} deliveries/s")
    print(
        f"  POST duration in a delivery p50 {statistics.median(durations):.1f} ms, "
        f"p95 {percentile(durations, 0.95):.1f} ms"
    )
    print(f"  outcomes                   {outcome}")
    print(f"  reference: plain httpx loop {reference:7.2f} s          {args.events / reference:8.0f} POSTs/s")
    verdict = (
        "OK" if rate >= TARGET_PER_SECOND and outcome.get("delivered") == args.events else "BELOW TARGET"
    )
    print(f"  target >= {TARGET_PER_SECOND} deliveries/s: {verdict}")
    record(
        "webhooks",
        f"drain {args.events} deliveries",
        f"{rate:.0f} /s",
        reference=f"httpx loop {args.events / reference:.0f} POST/s",
        ratio=rate / (args.events / reference),
        target=f">= {TARGET_PER_SECOND} /s",
        met=verdict == "OK",
    )


if __name__ == "__main__":
    main()
