"""Ids and filters from a URL that no row can hold (a NUL, which PostgreSQL refuses in text, or
an absurd length) are a 404 or an empty list on every page and API route, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import make_job, make_schedule

pytestmark = pytest.mark.django_db

HOSTILE = ["%00", "a%00b", "x" * 5000]


@pytest.fixture
def known(settings):
    """A job, a schedule and a webhook, so that each lookup has a row it could wrongly match."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    from webhooks import service as webhooks

    job = make_job()
    schedule = make_schedule()
    webhook, _ = webhooks.add_webhook("http://127.0.0.1:9/hook")
    return job, schedule, webhook


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_dashboard_id_no_row_can_hold_is_a_404(operator_browser, known, bad):
    _, _, webhook = known
    for url in (
        f"/ui/converter/?job={bad}",
        f"/ui/jobs/{bad}/",
        f"/ui/jobs/{bad}/live/",
        f"/ui/jobs/{bad}/actions/",
        f"/ui/schedules/{bad}/edit/",
        f"/ui/schedules/{bad}/delete/",
        f"/ui/webhooks/{bad}/deliveries/",
        f"/ui/webhooks/{webhook.id}/deliveries/{bad}/redeliver/",
    ):
        method = operator_browser.post if url.endswith("redeliver/") else operator_browser.get
        assert method(url).status_code == 404, url
    for url in (f"/ui/schedules/{bad}/enable/", f"/ui/webhooks/{bad}/delete/", f"/ui/webhooks/{bad}/test/"):
        assert operator_browser.post(url).status_code == 404, url


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_jobs_filter_no_row_can_hold_shows_a_page_not_a_500(operator_browser, known, bad):
    for query in (f"vm={bad}", f"status={bad}", f"created_from={bad}", f"created_to={bad}"):
        assert operator_browser.get(f"/ui/jobs/?{query}").status_code == 200, query


@pytest.mark.parametrize("bad", HOSTILE)
def test_an_api_id_or_filter_no_row_can_hold_is_a_404_or_nothing_found(operator_api, known, bad):
    for url in (f"/jobs/{bad}", f"/jobs/logs/{bad}", f"/schedules/{bad}", f"/webhooks/{bad}"):
        assert operator_api.get(url).status_code == 404, url
    for query in (f"vm={bad}", f"status={bad}", f"id={bad}"):
        response = operator_api.get(f"/jobs/query?{query}")
        assert response.status_code in (200, 400), query
        if response.status_code == 200:
            assert response.json()["results"] == [], query


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_jobs_date_filter_at_the_calendar_s_ends_shows_a_page_not_a_500(operator_browser, known, day):
    for query in (f"created_from={day}", f"created_to={day}"):
        assert operator_browser.get(f"/ui/jobs/?{query}").status_code == 200, query
