"""Infrastructure faults with real processes: hypervisord restarted mid-job, Redis restarted
mid-job, a webhook receiver that never answers. Nothing is lost, nothing runs twice, and
exports never wait for webhooks."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from django_celery_beat.models import PeriodicTask

from exports import jobs
from exports.models import Job, JobLog
from hypersdk.lib.embedded_redis import redis_answers
from tests.conftest import APP01, WorkerProcess, register_vcenter, reset_broker_pools, wait_for
from tests.processes import free_port, kill_process, stop_process
from tests.test_hypervisord import Hypervisord
from tests.webhook_receiver import Receiver
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.vsphere, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DB01 = "/dc/vm/prod/db01"
LOOPBACK = "127.0.0.0/8"
LIFECYCLE_EVENTS = ["job.started", "job.completed", "job.failed"]


# ---- a Redis of our own, to kill and start again ------------------------------------------


class RedisServer:
    """A private ``redis-server`` on a fixed loopback port, nothing persisted (as a crash loses it)."""

    def __init__(self, workdir: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:  # a missing tool fails the suite; `make test` installs it
            pytest.fail("redis-server is required for the fault tests (apt-get install redis-server)")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = [
            executable, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
            "--appendonly", "no", "--dir", str(workdir), "--logfile", str(workdir / "redis.log"),
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        wait_for(self.answers, timeout=30, message=f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        return redis_answers(port=self.port)

    def kill(self) -> None:
        """SIGKILL: the server vanishes with every connection and every queued message."""
        kill_process(self.process)

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.workdir.mkdir()
    yield server.start()
    server.stop()


@pytest.fixture
def broker_at(settings, redis_url):
    """Point this process's Celery app and channel layer at another Redis for one test."""
    from hypersdk.celery import app
    from hypersdk.settings import broker_url, channel_layer_settings

    def point(url: str) -> None:
        settings.REDIS_URL = url
        settings.CELERY_BROKER_URL = broker_url(url)
        settings.CHANNEL_LAYERS = channel_layer_settings(url)
        app.conf.broker_url = broker_url(url)
        reset_broker_pools()

    previous = app.conf.broker_url
    yield point
    app.conf.broker_url = previous
    reset_broker_pools()


# ---- helpers ------------------------------------------------------------------------------


@contextmanager
def frozen_pool(worker: WorkerProcess) -> Iterator[None]:
    """The worker's pool processes stopped (SIGSTOP), its main process not: a running export is
    held where it is, however long the test takes, while the worker still talks to its broker."""
    pool = psutil.Process(worker.process.pid).children()
    assert pool, "the worker has no pool processes"
    for child in pool:
        child.suspend()
    try:
        yield
    finally:
        for child in pool:
            child.resume()


def claims(job_id: str) -> int:
    """How many times a worker started the job (claim_job logs one line per claim)."""
    return JobLog.objects.filter(job_id=job_id, message__startswith="started on ").count()


def finished(job_id: str) -> Job | None:
    job = Job.objects.get(id=job_id)
    return job if job.is_finished else None


class DaemonAPI:
    """The daemon's HTTP API with an admin's token: ``(status, parsed body)`` for each call."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def get(self, path: str) -> tuple[int, Any]:
        return self._call("GET", path)

    def post(self, path: str, **body: Any) -> tuple[int, Any]:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


@pytest.fixture
def admin_token(transactional_db, django_user_model) -> str:
    from api_tokens.service import issue_token

    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-for-tests")
    return issue_token(user)


def daemon_env(worker_environment: dict[str, str], **extra: str) -> dict[str, str]:
    """The session's database, vCenter and secret key for a hypervisord; its own data dir."""
    env = {k: v for k, v in worker_environment.items() if k not in {"HYPERSDK_DATA_DIR", "REDIS_URL"}}
    return {**env, "HYPERSDK_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK, **extra}


# ---- 1. hypervisord restarted while a job runs on a separate worker ----------------------


def test_hypervisord_restart_mid_job_loses_nothing(
    worker_environment, slow_vsphere, private_redis, export_root, admin_token, tmp_path, settings
):
    """The API node (daphne + beat) is SIGTERMed and started again while a worker machine exports."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = [LOOPBACK]
    sim, _ = slow_vsphere
    register_vcenter(sim, "slow")
    receiver = Receiver().start()
    env = daemon_env(worker_environment, REDIS_URL=private_redis.url)
    worker = WorkerProcess(env, tmp_path / "worker.log", name="machine").start()
    data_dir = tmp_path / "hv"
    data_dir.mkdir()
    daemon = Hypervisord(data_dir, "--no-worker", env=env).wait_until_serving()
    try:
        api = DaemonAPI(daemon.url, admin_token)
        status, created = api.post("/webhooks", url=receiver.url, events=["job.completed"])
        assert status == 201, created
        status, schedule = api.post(
            "/schedules",
            name="nightly-db01",
            cron="0 2 * * *",
            vm_path=DB01,
            output_path=str(export_root / "nightly"),
            vcenter="slow",
        )
        assert status == 201, schedule
        output = export_root / "db01"
        status, submitted = api.post("/jobs/submit", vm_path=DB01, output_path=str(output), vcenter="slow")
        assert status == 202, submitted
        (job_id,) = submitted["job_ids"]
        wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")

        # The export is held mid-download while the API node stops, however long that takes:
        # only the stop could change the job's status now.
        with frozen_pool(worker):
            assert daemon.stop() == 0
            assert "hypervisord: all children stopped" in daemon.output
            # The API node is gone; the export on the worker machine goes on.
            assert Job.objects.get(id=job_id).status == Job.Status.RUNNING

        daemon = Hypervisord(data_dir, "--no-worker", env=env).wait_until_serving()
        api = DaemonAPI(daemon.url, admin_token)
        job = wait_for(lambda: finished(job_id), message="the export to finish after the restart")
        assert job.status == Job.Status.COMPLETED, job.error
        assert claims(job_id) == 1
        assert sorted(path.name for path in output.iterdir() if path.suffix == ".vmdk") == ["db01-disk1.vmdk"]

        status, served = api.get(f"/jobs/{job_id}")
        assert (status, served["status"]) == (200, "completed")
        status, schedules = api.get("/schedules")
        assert status == 200 and [s["id"] for s in schedules["results"]] == [schedule["id"]]
        status, webhooks = api.get("/webhooks")
        assert status == 200 and [w["url"] for w in webhooks["results"]] == [receiver.url]
        # The webhook made before the restart still fires: the job's completion reached it.
        wait_for(lambda: "job.completed" in receiver.events(), message="job.completed delivered")
        # The one tick beat runs is there after the restart: the schedule keeps firing.
        assert (
            PeriodicTask.objects.filter(enabled=True, task="schedules.tasks.fire_due_schedules").count() == 1
        )
    finally:
        daemon.close()
        worker.stop()
        receiver.stop()


# ---- 2. Redis restarted while a job runs --------------------------------------------------


def test_redis_restart_mid_job_runs_the_job_once_and_the_worker_reconnects(
    worker_environment, slow_vsphere, app01_seeds, private_redis, broker_at, export_root, tmp_path
):
    """Redis is the broker and the live-progress layer, never the truth: the export goes on
    while it is gone (progress publishing is best effort), finishes once, and the worker
    consumes again from the new server."""
    sim, _ = slow_vsphere
    register_vcenter(sim, "slow")
    broker_at(private_redis.url)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(daemon_env(worker_environment, REDIS_URL=private_redis.url), log, name="flaky")
    worker.start()
    try:
        output = export_root / "db01"
        job_id = jobs.submit_jobs([{"vm_path": DB01, "output_path": str(output), "vcenter": "slow"}]).job_ids[
            0
        ]
        wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")

        # The export is held mid-download (its pool process stopped; the worker's main process
        # still notices the loss) until the job's status is read: it cannot finish meanwhile.
        with frozen_pool(worker):
            private_redis.kill()
            wait_for(
                lambda: "onnection to broker lost" in log.read_text(errors="replace"), message="the loss"
            )
            assert Job.objects.get(id=job_id).status == Job.Status.RUNNING
        private_redis.start()

        job = wait_for(lambda: finished(job_id), message="the export to finish")
        assert job.status == Job.Status.COMPLETED, job.error
        assert claims(job_id) == 1
        assert [path.name for path in output.iterdir() if path.suffix == ".vmdk"] == ["db01-disk1.vmdk"]

        after = export_root / "app01"
        second = jobs.submit_jobs([{"vm_path": APP01, "output_path": str(after)}]).job_ids[0]
        job = wait_for(lambda: finished(second), message="a job submitted after the restart to finish")
        assert job.status == Job.Status.COMPLETED, job.error
        assert claims(second) == 1
        assert worker.process.poll() is None  # the same worker process, reconnected, not restarted
        # One message per job reached the worker: nothing was redelivered after the reconnect.
        received = re.findall(r"Task exports\.tasks\.run_export_job\[\S+\] received", log.read_text())
        assert len(received) == 2
    finally:
        worker.stop()
    assert private_redis.starts == 2


# ---- 3. a webhook receiver that hangs ------------------------------------------------------

WEBHOOK_TIMEOUT = 20  # far longer than the two small exports below take (about 5 s)


class HangingReceiver:
    """Accepts each connection and reads the request, then never answers (until stopped)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.requests: list[dict[str, str]] = []  # each request's headers, names in lower case
        self.connections: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> HangingReceiver:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        self.requests.append({k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head)})

    def message_ids(self) -> list[str]:
        return [request.get("webhook-id", "") for request in list(self.requests)]

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        for connection in self.connections:
            connection.close()
        self.server.close()


def test_a_hanging_webhook_receiver_times_out_and_retries_while_exports_go_on(
    worker_environment, app01_seeds, export_root, admin_token, tmp_path, settings
):
    """hypervisord as it runs in production: an export worker with ONE slot and a webhook
    worker on its own queue. Both exports finish while every webhook POST is still hanging;
    then the deliveries time out and their retries are scheduled and sent."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = [LOOPBACK]
    receiver = HangingReceiver().start()
    env = daemon_env(
        worker_environment,
        HYPERSDK_WORKER_CONCURRENCY="1",
        HYPERSDK_WEBHOOK_TIMEOUT=str(WEBHOOK_TIMEOUT),
        HYPERSDK_WEBHOOK_RETRY_DELAYS="1,1",
    )
    data_dir = tmp_path / "hv"
    data_dir.mkdir()
    daemon = Hypervisord(data_dir, env=env).wait_until_serving()
    try:
        for name in ("worker", "webhooks"):
            daemon.wait_for(lambda n=name: f"{n}@" in daemon.output and f"{n}: " in daemon.output, name)
        daemon.wait_for(lambda: daemon.output.count(" ready.") >= 2, "both workers to be ready")
        assert "--queues webhooks" in " ".join(" ".join(p.cmdline()) for p in daemon.descendants())

        api = DaemonAPI(daemon.url, admin_token)
        status, created = api.post("/webhooks", url=receiver.url, events=LIFECYCLE_EVENTS)
        assert status == 201, created
        job_ids = []
        for name in ("first", "second"):
            status, submitted = api.post("/jobs/submit", vm_path=APP01, output_path=str(export_root / name))
            assert status == 202, submitted
            job_ids += submitted["job_ids"]

        wait_for(lambda: all(finished(job_id) for job_id in job_ids), message="both exports")
        assert [Job.objects.get(id=job_id).status for job_id in job_ids] == ["completed"] * 2
        # job.completed is recorded just after the job's status: wait for the second one's row.
        deliveries = wait_for(
            lambda: (
                (rows := list(WebhookDelivery.objects.filter(webhook_id=created["id"])))
                and len(rows) == 4
                and rows
            ),
            message="the four lifecycle deliveries",
        )
        # The exports (one at a time on the single export slot) never waited for a webhook:
        # when the second one finished, no POST had come back yet, and the receiver held some.
        assert sorted(d.event for d in deliveries) == ["job.completed"] * 2 + ["job.started"] * 2
        assert [d.attempts for d in deliveries] == [0] * 4
        assert receiver.requests

        def first_timeout() -> WebhookDelivery | None:
            return WebhookDelivery.objects.filter(webhook_id=created["id"], attempts__gte=1).first()

        timed_out = wait_for(first_timeout, timeout=WEBHOOK_TIMEOUT * 6, message="the first timeout")
        assert timed_out.status == WebhookDelivery.Status.PENDING  # not given up: retried
        assert timed_out.status_code is None
        assert f"no complete answer within {WEBHOOK_TIMEOUT} s" in timed_out.error
        assert timed_out.next_attempt_at > timed_out.last_attempt_at
        # The retry goes out with the same message id (receivers deduplicate on it).
        wait_for(
            lambda: receiver.message_ids().count(timed_out.message_id) >= 2,
            timeout=WEBHOOK_TIMEOUT * 4,
            message="the retry of the timed-out delivery",
        )
    finally:
        daemon.close()
        receiver.stop()
