"""hypervisord: the daemon. Migrates, then supervises Redis (when embedded), daphne and Celery."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from cli.hypervisord import HypervisordConfig, hypervisord_children, parse_listen
from exports.start_checks import run_start_checks
from hypersdk.lib import embedded_redis
from hypersdk.lib.daemon_record import remove_daemon_record, write_daemon_record
from hypersdk.lib.env import ConfigError, env_int
from hypersdk.lib.supervisor import Supervisor
from webhooks import conf as webhook_conf


class Command(BaseCommand):
    help = (
        "Run the HyperSDK daemon: HTTP + websockets (daphne), Celery workers for exports and "
        "webhooks, and beat, supervised."
    )

    def add_arguments(self, parser):
        parser.add_argument("--listen", metavar="HOST:PORT", help="HTTP address (default: HYPERSDK_LISTEN)")
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="run no Celery workers, neither exports nor webhooks (API-only node)",
        )
        parser.add_argument("--no-beat", action="store_true", help="run no Celery beat (run one per cluster)")

    def handle(self, *args, **options):
        run_start_checks(self)
        try:
            host, port = parse_listen(options["listen"] or settings.HYPERSDK_LISTEN)
            concurrency = env_int(
                "HYPERSDK_WORKER_CONCURRENCY", settings.HYPERSDK_MAX_CONCURRENT_EXPORTS, minimum=1
            )
        except (ValueError, ConfigError) as exc:
            raise CommandError(str(exc)) from exc
        socket = settings.EMBEDDED_REDIS_SOCKET if embedded_redis.uses_embedded_redis() else None
        if socket is not None and embedded_redis.answers_ping(socket):
            raise CommandError(f"a Redis server already answers on {socket}: is hypervisord already running?")
        config = HypervisordConfig(
            host=host,
            port=port,
            data_dir=settings.DATA_DIR,
            worker_concurrency=concurrency,
            worker=not options["no_worker"],
            webhook_concurrency=webhook_conf.worker_concurrency(),
            export_queue=settings.CELERY_TASK_DEFAULT_QUEUE,
            webhook_queue=settings.HYPERSDK_WEBHOOK_QUEUE,
            beat=not options["no_beat"],
            redis_socket=socket,
        )
        try:
            children = hypervisord_children(config)
        except embedded_redis.EmbeddedRedisError as exc:
            raise CommandError(str(exc)) from exc

        # Line-buffered: journald, or a test reading the pipe, gets each line as it is written.
        sys.stdout.reconfigure(line_buffering=True)
        # Both are cheap when up to date; the database and the admin's CSS are then ready.
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        supervisor = Supervisor(children, out=sys.stdout, name="hypervisord")
        # Every process on the machine (daphne's /status, the CLIs) reads the uptime from here.
        write_daemon_record(config.data_dir)
        try:
            status = supervisor.run(on_started=lambda: supervisor.say(config.summary()))
        finally:
            remove_daemon_record(config.data_dir)
        if status:
            raise CommandError("start-up failed", returncode=status)
