"""List endpoints at scale on PostgreSQL: 10,000 schedules and 10,000 webhooks.

Target: the first page of ``GET /schedules`` and of ``GET /webhooks`` (the default page of 50)
answers in <= 200 ms (p95). Each figure is printed beside a reference measured in the same run:
the bare ORM fetching the same page (count + the rows). ``hyperctl schedules list`` (local
backend, in-process) is timed as well. One warm-up request each, then timed. Runs in-process through Django's full request stack
(middleware, token auth, DRF).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DB, DEFAULT_POSTGRES, alternate, api_against_orm, ensure_database, record, settle  # noqa: E402

TARGET_MS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--database", default=BENCH_DB, help="the bench's own database (created once)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.postgres, args.database)
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from api_tokens.service import issue_token
    from exports.models import Job
    from hypersdk.lib.permissions import grant_role
    from schedules.models import Schedule
    from webhooks.models import Webhook

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    grant_role(user, "operator")
    client = Client(HTTP_AUTHORIZATION=f"Token {issue_token(user)}", HTTP_HOST="localhost")

    # 10,000 schedules, each with a last job (the list shows its status), and 10,000 webhooks.
    Schedule.objects.all().delete()
    Webhook.objects.all().delete()
    now = timezone.now()
    started = time.perf_counter()
    jobs = Job.objects.bulk_create(
        Job(vm_path=f"/dc/vm/prod/vm{n:05}", output_path=f"/exports/vm{n:05}", status="completed")
        for n in range(args.rows)
    )
    Schedule.objects.bulk_create(
        (
            Schedule(
                name=f"nightly-{n:05}",
                cron=("0 2 * * *", "*/15 * * * *", "0 9-17 * * 1-5")[n % 3],
                timezone=("UTC", "Europe/Berlin", "America/New_York")[n % 3],
                job_template={"vm_path": f"/dc/vm/prod/vm{n:05}", "format": "ova"},
                last_job=jobs[n],
                last_run_at=now,
                run_count=1,
            )
            for n in range(args.rows)
        ),
        batch_size=2000,
    )
    webhooks = []
    for n in range(args.rows):
        webhook = Webhook(url=f"https://hooks.example/{n}", events=["job.failed"], created_at=now)
        webhook.secret_encrypted = "x"  # never sent: listing does not decrypt
        webhooks.append(webhook)
    Webhook.objects.bulk_create(webhooks, batch_size=2000)
    with connection.cursor() as cursor:  # steady state, as autovacuum leaves a live table
        cursor.execute("VACUUM ANALYZE schedules_schedule")
        cursor.execute("VACUUM ANALYZE webhooks_webhook")
        cursor.execute("VACUUM ANALYZE exports_job")
    print(f"made {args.rows:,} schedules and {args.rows:,} webhooks in {time.perf_counter() - started:.1f} s")

    def first_page(path: str, orm_page) -> None:
        client.get(path)  # warm-up, as a running daemon is: imports, caches, the connection

        def api_page() -> float:
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
            body = response.json()
            assert response.status_code == 200 and body["count"] == args.rows and len(body["results"]) == 50
            return elapsed

        def bare_orm() -> float:
            started = time.perf_counter()
            orm_page()
            return time.perf_counter() - started

        # Per request, warm (a daemon's steady state): written back once, then no flush between.
        settle()
        times = alternate({"api": api_page, "orm": bare_orm}, args.requests, before=None)
        api_times, orm_times = times["api"], times["orm"]
        api_against_orm(
            "lists",
            f"GET {path} first page of 50 over {args.rows:,} rows, {args.requests} requests",
            f"GET {path} first page ({args.rows:,} rows) p95",
            api_times,
            orm_times,
            TARGET_MS,
        )

    def schedules_page() -> None:
        rows = Schedule.objects.select_related("last_job").order_by("name")
        rows.count()
        list(rows[:50])

    def webhooks_page() -> None:
        rows = Webhook.objects.order_by("created_at", "id")
        rows.count()
        list(rows[:50])

    first_page("/schedules", schedules_page)
    first_page("/webhooks", webhooks_page)

    cli_times = []
    for _ in range(5):
        started = time.perf_counter()
        call_command("hyperctl", "schedules", "list", stdout=StringIO(), stderr=StringIO())
        cli_times.append(time.perf_counter() - started)
    cli = statistics.median(cli_times) * 1000
    print(f"hyperctl schedules list (local, first page, in-process): median {cli:.1f} ms")
    record("lists", f"hyperctl schedules list, local ({args.rows:,})", f"{cli:.1f} ms")


if __name__ == "__main__":
    main()
