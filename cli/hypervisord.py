"""What hypervisord runs: its listen address, its configuration and its list of children
(embedded Redis, daphne, the export and webhook workers, beat) for ``hypersdk.lib.supervisor``."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from hypersdk.lib.supervisor import Child


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port); ValueError on anything else."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"listen address must be HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


@dataclass(frozen=True)
class HypervisordConfig:
    """What hypervisord runs, resolved from settings and flags."""

    host: str
    port: int
    data_dir: Path
    worker_concurrency: int
    worker: bool = True
    # The webhook worker (runs with the export worker, consumes only the webhook queue).
    webhook_concurrency: int = 3
    export_queue: str = "celery"
    webhook_queue: str = "webhooks"
    beat: bool = True
    # The socket of the embedded Redis, or None when REDIS_URL points at a real server.
    redis_socket: Path | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def summary(self) -> str:
        redis = f"embedded Redis on {self.redis_socket}" if self.redis_socket else "external Redis"
        worker = "no worker"
        if self.worker:
            worker = f"worker concurrency {self.worker_concurrency} + {self.webhook_concurrency} for webhooks"
        beat = "beat" if self.beat else "no beat"
        return f"HyperSDK listening on {self.url} (data dir {self.data_dir}, {redis}, {worker}, {beat})"


def hypervisord_children(config: HypervisordConfig, *, python: str = sys.executable) -> list[Child]:
    """Redis first (waited for, stopped last), then daphne, the workers and beat, same Python.

    Exports and webhook deliveries run in two workers on two queues, so a webhook receiver that
    hangs ties up a webhook process for its timeout and never delays an export.
    """
    from hypersdk.lib import embedded_redis

    base_dir = str(Path(__file__).resolve().parent.parent)
    env = {
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "hypersdk.settings"),
        # The children must agree with us on the data dir (SQLite file, secret key, socket).
        "HYPERSDK_DATA_DIR": str(config.data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    children: list[Child] = []
    if config.redis_socket is not None:
        socket = config.redis_socket
        children.append(
            Child(
                "redis",
                embedded_redis.server_command(config.data_dir, socket),
                cwd=str(config.data_dir),
                ready=lambda: embedded_redis.answers_ping(socket),
                stop_last=True,
            )
        )
    children.append(
        Child(
            "daphne",
            [python, "-m", "daphne", "-b", config.host, "-p", str(config.port), "hypersdk.asgi:application"],
            env=env,
            cwd=base_dir,
        )
    )
    celery = [python, "-m", "celery", "-A", "hypersdk", "--no-color"]
    if config.worker:
        workers = (
            ("worker", config.worker_concurrency, config.export_queue),
            ("webhooks", config.webhook_concurrency, config.webhook_queue),
        )
        for name, concurrency, queue in workers:
            argv = ["worker", "-l", "info", "--concurrency", str(concurrency)]
            argv += ["--queues", queue, "--hostname", f"{name}@%h"]
            children.append(Child(name, [*celery, *argv], env=env, cwd=base_dir))
    if config.beat:
        beat_argv = [
            "beat",
            "-l", "info",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile", str(config.data_dir / "celerybeat.pid"),
            "--schedule", str(config.data_dir / "celerybeat-schedule"),
        ]  # fmt: skip
        children.append(Child("beat", [*celery, *beat_argv], env=env, cwd=base_dir))
    return children
