"""Jobs API benchmark on PostgreSQL: a 1,000-job batch submit and job queries over 100,000 jobs.

Targets: batch submit <= 2 s; GET /jobs/query (page of 100, filtered by status) p95 <= 50 ms.
Each figure is printed beside a reference measured in the same run: the bare ORM work the
endpoint cannot avoid (bulk insert of the same rows; the same page fetched by the ORM).
Runs in-process through Django's full request stack (middleware, token auth, DRF); the two sides
of each figure alternate (``common.alternate``), the batches with dirty pages written back first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_POSTGRES, alternate, api_against_orm, ensure_database, record, settle  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.postgres)
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
    from exports.models import Job, JobLog
    from hypersdk.lib.permissions import grant_role

    call_command("migrate", verbosity=0)
    JobLog.objects.all().delete()
    Job.objects.all().delete()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    grant_role(user, "operator")
    token = issue_token(user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="localhost")
    statuses = ["completed", "failed", "running", "cancelled", "completed"]

    # 1. One batch of 1,000 jobs through POST /jobs/submit, against a bare bulk insert of 1,000.
    specs = [{"vm_path": f"/dc/vm/prod/vm{n:04}", "format": "ova", "manifest": True} for n in range(1000)]

    def submit_batch() -> float:
        started = time.perf_counter()
        response = client.post("/jobs/submit", {"jobs": specs}, content_type="application/json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 202 and response.json()["accepted"] == 1000, response.content[:300]
        Job.objects.filter(status="pending").update(status="cancelled")
        return elapsed

    def bulk_insert() -> float:
        started = time.perf_counter()
        Job.objects.bulk_create(
            Job(vm_path=s["vm_path"], output_path="/exports/x", options={}) for s in specs
        )
        return time.perf_counter() - started

    times = alternate({"batch": submit_batch, "insert": bulk_insert})
    batch_times, insert_times = times["batch"], times["insert"]
    batch, insert = statistics.median(batch_times), statistics.median(insert_times)
    print(
        f"submit 1,000 jobs in one batch: {batch:.2f} s (target <= 2 s); bare bulk insert {insert:.2f} s; ratio {batch / insert:.1f}"
    )
    record(
        "api",
        "POST /jobs/submit, 1,000 jobs",
        f"{batch:.2f} s",
        reference=f"bulk insert {insert:.2f} s",
        ratio=batch / insert,
        target="<= 2 s",
        met=batch <= 2,
    )

    # 2. Grow to --jobs jobs, then query pages of 100 filtered by status.
    missing = args.jobs - Job.objects.count()
    now = timezone.now()
    for start in range(0, max(missing, 0), 10_000):
        Job.objects.bulk_create(
            Job(
                vm_path=f"/dc/vm/prod/vm{n % 5000:04}",
                output_path=f"/exports/vm{n}",
                options={"format": "ovf"},
                status=statuses[n % len(statuses)],
                created_at=now - timezone.timedelta(seconds=n),
            )
            for n in range(start, min(start + 10_000, missing))
        )
    with connection.cursor() as cursor:  # steady state, as autovacuum leaves a live table
        cursor.execute("VACUUM ANALYZE exports_job")
    total = Job.objects.count()
    # The same pages in the same order for both, whichever goes first in a round.
    pages = [(("failed", "completed", "cancelled")[n % 3], 1 + n % 5) for n in range(args.queries)]
    api_pages, orm_pages = iter(pages), iter(pages)

    def api_page() -> float:
        status, page = next(api_pages)
        started = time.perf_counter()
        response = client.get("/jobs/query", {"status": status, "page_size": 100, "page": page})
        elapsed = time.perf_counter() - started
        assert response.status_code == 200 and len(response.json()["results"]) == 100
        return elapsed

    def orm_page() -> float:
        status, page = next(orm_pages)
        started = time.perf_counter()
        rows = Job.objects.filter(status=status).order_by("-created_at", "-id")
        rows.count()
        list(rows[(page - 1) * 100 : page * 100])
        return time.perf_counter() - started

    # Per request, warm (a daemon's steady state): written back once, then no flush between.
    settle()
    times = alternate({"api": api_page, "orm": orm_page}, args.queries, before=None)
    api_times, orm_times = times["api"], times["orm"]
    api_against_orm(
        "api",
        f"GET /jobs/query over {total:,} jobs (page of 100, by status), {args.queries} requests",
        f"GET /jobs/query p95 ({total:,} jobs)",
        api_times,
        orm_times,
        50,
    )


if __name__ == "__main__":
    main()
