"""Every list endpoint pages like ``/jobs/query`` (``page``, ``page_size``; ``{count, next,
previous, results}``) with a fixed number of queries whatever the number of rows, and the
CLIs page too (``-page N``, ``-all``)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from cli.backends import CLIError, LocalBackend, RemoteBackend
from exports.models import Job
from schedules.models import Schedule
from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def make_schedules(count: int, *, with_jobs: bool = True) -> list[Schedule]:
    """``count`` schedules (s0000, s0001, ...), each with a last job, as bulk rows."""
    now = timezone.now()
    jobs = [
        Job(vm_path=f"/dc/vm/prod/vm{n}", output_path=f"/exports/vm{n}", created_at=now) for n in range(count)
    ]
    if with_jobs:
        Job.objects.bulk_create(jobs)
    return Schedule.objects.bulk_create(
        Schedule(
            name=f"s{n:04}",
            cron="0 2 * * *",
            timezone="Europe/Berlin",
            job_template={"vm_path": f"/dc/vm/prod/vm{n}"},
            last_job=jobs[n] if with_jobs else None,
            last_run_at=now if with_jobs else None,
        )
        for n in range(count)
    )


def make_webhooks(count: int) -> list[Webhook]:
    webhooks = []
    for n in range(count):
        webhook = Webhook(url=f"https://hooks.example/{n}", events=["job.failed"])
        webhook.set_new_secret()
        webhooks.append(webhook)
    return Webhook.objects.bulk_create(webhooks)


def test_schedules_are_paged_like_jobs_query(viewer_api):
    made = make_schedules(5)
    first = viewer_api.get("/schedules", {"page_size": 2}).json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert set(first) == set(viewer_api.get("/jobs/query", {"page_size": 2}).json())
    assert first["count"] == 5 and first["previous"] is None and "page=2" in first["next"]
    assert [s["name"] for s in first["results"]] == ["s0000", "s0001"]
    last = viewer_api.get("/schedules", {"page_size": 2, "page": 3}).json()
    assert [s["id"] for s in last["results"]] == [made[4].id] and last["next"] is None
    # The default page is the API's: 50.
    assert len(viewer_api.get("/schedules").json()["results"]) == 5


def test_webhooks_are_paged_and_keep_their_index_across_pages(viewer_api):
    made = make_webhooks(5)
    page = viewer_api.get("/webhooks", {"page_size": 2, "page": 2}).json()
    assert page["count"] == 5
    assert [(w["index"], w["id"]) for w in page["results"]] == [(2, made[2].id), (3, made[3].id)]
    # An index from a page addresses the same webhook.
    assert viewer_api.get("/webhooks/3").json()["id"] == made[3].id


def test_deliveries_are_paged(viewer_api):
    webhook = make_webhooks(1)[0]
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(webhook=webhook, event="job.failed", body="{}") for _ in range(3)
    )
    page = viewer_api.get("/webhooks/0/deliveries", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and "page=2" in page["next"]


@pytest.mark.parametrize("path", ["/schedules", "/webhooks", "/webhooks/0/deliveries", "/jobs/query"])
@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "٣"},
        {"page": "10" * 20},
        {"page_size": "0"},
        {"page_size": "²"},
        {"page_size": "1001"},
    ],
)
def test_bad_page_parameters_are_a_400_on_every_list(viewer_api, path, params):
    make_webhooks(1)
    response = viewer_api.get(path, params)
    assert response.status_code == 400, (path, params, response.content)
    assert set(response.json()) == set(params)


@pytest.mark.parametrize("path", ["/schedules", "/webhooks", "/webhooks/0/deliveries", "/jobs/query"])
def test_a_page_past_the_end_is_a_404_that_names_it(viewer_api, path):
    make_webhooks(1)
    response = viewer_api.get(path, {"page": 9})
    assert response.status_code == 404 and response.json()["detail"].startswith("there is no page 9")


# ---- queries: none per row ---------------------------------------------------------------------


def queries_for(path: str, viewer_api: APIClient, django_assert_max_num_queries, limit: int) -> None:
    with django_assert_max_num_queries(limit):
        response = viewer_api.get(path, {"page_size": 1000})
    assert response.status_code == 200


def test_a_page_of_schedules_costs_the_same_queries_for_10_or_1000_rows(
    viewer_api, django_assert_max_num_queries
):
    # The token's digest candidates (knox), its user, the user's role, the count, and the page
    # (schedules joined with their last job and missed-run counts): 5 whatever the number of rows.
    make_schedules(10)
    queries_for("/schedules", viewer_api, django_assert_max_num_queries, 5)
    Schedule.objects.all().delete()
    make_schedules(1000)
    queries_for("/schedules", viewer_api, django_assert_max_num_queries, 5)


def test_a_page_of_webhooks_costs_the_same_queries_for_10_or_1000_rows(
    viewer_api, django_assert_max_num_queries
):
    make_webhooks(10)
    queries_for("/webhooks", viewer_api, django_assert_max_num_queries, 5)
    make_webhooks(990)
    queries_for("/webhooks", viewer_api, django_assert_max_num_queries, 5)


def test_the_dashboard_schedules_page_and_the_local_cli_query_a_fixed_number_of_times(
    admin_client, django_assert_max_num_queries
):
    make_schedules(200)
    with django_assert_max_num_queries(8):  # session, user, groups, count, the page
        page = admin_client.get("/ui/schedules/").content.decode()
    assert "Page 1 of 4 (200 schedules)" in page and "s0049" in page and "s0050" not in page
    make_webhooks(60)
    with django_assert_max_num_queries(8):
        page = admin_client.get("/ui/webhooks/", {"page": 2}).content.decode()
    assert (
        "Page 2 of 2 (60 webhooks)" in page and "hooks.example/59" in page and "hooks.example/49" not in page
    )
    with django_assert_max_num_queries(2):
        LocalBackend().list_schedules(page_size=200)
    with django_assert_max_num_queries(2):
        LocalBackend().list_webhooks(page_size=200)


# ---- the CLIs ---------------------------------------------------------------------------------


def hyperctl(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("hyperctl", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_schedules_list_shows_the_first_page_and_says_how_to_see_more():
    make_schedules(120, with_jobs=False)
    code, out, err = hyperctl("schedules", "list")
    assert code == 0 and len(out.splitlines()) == 51  # header + 50
    assert out.splitlines()[1].split()[1] == "s0000"
    assert err == "page 1 of 3 (120 schedules): -page 2 for the next, -all for every one\n"
    code, out, err = hyperctl("schedules", "list", "-page", "3", "-quiet")
    assert [line.split("\t")[1] for line in out.splitlines()] == [f"s{n:04}" for n in range(100, 120)]
    assert err == "page 3 of 3 (120 schedules): -all for every one\n"
    code, out, err = hyperctl("schedules", "list", "--all", "-quiet")
    assert (code, len(out.splitlines()), err) == (0, 120, "")


def test_a_page_past_the_end_or_not_a_number_is_a_clear_cli_error():
    make_schedules(3, with_jobs=False)
    assert hyperctl("schedules", "list", "-page", "2")[0::2] == (
        1,
        "error: there is no page 2: That page contains no results\n",
    )
    # call_command raises what a shell would print as a usage error (exit status 2).
    with pytest.raises(CommandError, match="invalid page '٣': a whole number from 1"):
        hyperctl("schedules", "list", "-page", "٣")


def test_webhooks_list_pages_with_indexes_that_continue():
    make_webhooks(55)
    code, out, err = hyperctl("webhooks", "list", "-page", "2")
    rows = out.splitlines()[1:]
    assert code == 0 and [row.split()[0] for row in rows] == [str(n) for n in range(50, 55)]
    assert err == "page 2 of 2 (55 webhooks): -all for every one\n"


@pytest.mark.django_db(transaction=True)
def test_the_remote_backend_pages_the_same_as_the_local_one(daemon):
    make_schedules(7, with_jobs=False)
    local, remote = LocalBackend(), RemoteBackend(daemon.url, daemon.token)
    for kwargs in ({"page": 1, "page_size": 3}, {"page": 3, "page_size": 3}, {"page": None}):
        assert remote.list_schedules(**kwargs) == local.list_schedules(**kwargs), kwargs
    assert (
        remote.list_schedules(page=None)["count"] == 7
        and len(remote.list_schedules(page=None)["results"]) == 7
    )
    with pytest.raises(CLIError, match="^there is no page 4: That page contains no results$"):
        remote.list_schedules(page=4, page_size=3)
    with pytest.raises(CLIError, match="^there is no page 4: That page contains no results$"):
        local.list_schedules(page=4, page_size=3)
