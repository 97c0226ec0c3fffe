"""/metrics: django-prometheus plus our hypersdk_* metrics, counted in the database by the real
worker processes that run the exports, read by the API at scrape time."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from api_tokens.service import issue_token
from exports import jobs
from exports.models import Job
from hypersdk.lib import events
from hypersdk.lib.permissions import grant_role
from metrics import recording
from tests.conftest import APP01, wait_for
from tests.factories import make_job
from tests.webhook_receiver import Receiver, Reply
from webhooks import drain, payloads
from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.vsphere

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def metrics_subscribed():
    events.subscribe(recording.on_event)  # another module's test may have cleared the subscribers


def token_for(django_user_model, username: str, role: str | None) -> str:
    user = django_user_model.objects.create_user(username, password=f"{username}-pass-for-tests")
    if role:
        grant_role(user, role)
    return issue_token(user)


def scrape(token: str | None, *, scheme: str = "Token") -> Samples:
    """GET /metrics, parsed with prometheus_client's own parser (a malformed page raises)."""
    headers = {"HTTP_AUTHORIZATION": f"{scheme} {token}"} if token else {}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def scrape_once_counted(token: str, before: Samples, name: str) -> Samples:
    """The worker counts just after it records the outcome: scrape until ``name`` has moved."""

    def moved() -> Samples | None:
        samples = scrape(token)
        return samples if delta(before, samples, name) else None

    return wait_for(moved, message=f"{name} to move")


def finished(job_id: str) -> Job | None:
    job = Job.objects.get(id=job_id)
    return job if job.is_finished else None


# ---- counted by real workers -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_completed_export_counts_its_start_end_bytes_and_duration(
    celery_worker, app01_seeds, export_root, django_user_model
):
    token = token_for(django_user_model, "prometheus", "viewer")
    before = scrape(token)
    job_id = jobs.submit_jobs([{"vm_path": APP01, "output_path": str(export_root / "app01")}]).job_ids[0]
    job = wait_for(lambda: finished(job_id), message="the export to finish")
    assert job.status == "completed", job.error
    # The duration's count is the worker's last write for a completed export.
    after = scrape_once_counted(token, before, "hypersdk_export_duration_seconds_count")

    assert delta(before, after, "hypersdk_exports_started_total") == 1
    assert delta(before, after, "hypersdk_exports_completed_total") == 1
    assert delta(before, after, "hypersdk_exports_failed_total") == 0
    exported = job.result["total_bytes"]
    assert exported >= sum(seed.stat().st_size for seed in app01_seeds)
    assert delta(before, after, "hypersdk_exported_bytes_total") == exported
    assert delta(before, after, "hypersdk_export_duration_seconds_count") == 1
    assert delta(before, after, "hypersdk_export_duration_seconds_bucket", le="+Inf") == 1
    duration = (job.finished_at - job.started_at).total_seconds()
    assert delta(before, after, "hypersdk_export_duration_seconds_sum") == pytest.approx(duration)
    # django-prometheus' own metrics are on the same page.
    assert value(after, "django_http_requests_total_by_method_total", method="GET") >= 1
    assert any(name == "django_db_execute_total" for name, _ in after)


@pytest.mark.django_db(transaction=True)
def test_a_failed_export_is_counted_as_failed(celery_worker, export_root, django_user_model):
    token = token_for(django_user_model, "prometheus", "viewer")
    before = scrape(token)
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/nope", "output_path": str(export_root / "x")}]
    ).job_ids[0]
    job = wait_for(lambda: finished(job_id), message="the export to fail")
    assert job.status == "failed"
    after = scrape_once_counted(token, before, "hypersdk_exports_failed_total")
    assert delta(before, after, "hypersdk_exports_started_total") == 1
    assert delta(before, after, "hypersdk_exports_failed_total") == 1
    assert delta(before, after, "hypersdk_exports_completed_total") == 0
    assert delta(before, after, "hypersdk_exported_bytes_total") == 0
    assert delta(before, after, "hypersdk_export_duration_seconds_count") == 0


# ---- counted in this process -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_cancelled_pending_job_is_counted_and_the_queue_gauges_follow_the_jobs(django_user_model):
    token = token_for(django_user_model, "prometheus", "viewer")
    for _ in range(2):
        make_job(APP01, "/exports/q")
    make_job(APP01, "/exports/r", status="running", started_at=timezone.now())
    before = scrape(token)
    assert value(before, "hypersdk_queue_length") == 2
    assert value(before, "hypersdk_jobs_running") == 1

    jobs.cancel_job(Job.objects.filter(status="pending").first().id)
    after = scrape(token)
    assert delta(before, after, "hypersdk_exports_cancelled_total") == 1
    assert value(after, "hypersdk_queue_length") == 1


@pytest.mark.django_db
def test_webhook_delivery_attempts_are_counted_by_outcome(settings, django_user_model):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.HYPERSDK_WEBHOOK_RETRY_DELAYS = ["0", "0"]
    token = token_for(django_user_model, "prometheus", "viewer")
    receiver = Receiver().start()
    try:
        receiver.reply(Reply(status=500))  # the first attempt fails, the retry succeeds
        webhook = Webhook(url=receiver.url)
        webhook.set_new_secret()
        webhook.save()
        body = payloads.body("job.completed", {"job_id": "job-x"})
        row = WebhookDelivery.objects.create(
            webhook=webhook, event="job.completed", body=body, next_attempt_at=timezone.now()
        )
        before = scrape(token)
        assert value(before, "hypersdk_webhook_queue_length") == 1
        assert drain.deliver(row.id) == "pending"
        WebhookDelivery.objects.filter(id=row.id).update(next_attempt_at=timezone.now())
        assert drain.deliver(row.id) == "delivered"
        after = scrape(token)
    finally:
        receiver.stop()
    assert len(receiver.requests) == 2
    assert delta(before, after, "hypersdk_webhook_deliveries_total", outcome="retrying") == 1
    assert delta(before, after, "hypersdk_webhook_deliveries_total", outcome="delivered") == 1
    assert delta(before, after, "hypersdk_webhook_deliveries_total", outcome="failed") == 0
    assert value(after, "hypersdk_webhook_queue_length") == 0


@pytest.mark.django_db
def test_counters_add_up_across_increments_and_label_sets():
    recording.increment("hypersdk_webhook_deliveries_total", labels={"outcome": "failed"})
    recording.increment("hypersdk_webhook_deliveries_total", 2, labels={"outcome": "failed"})
    recording.observe("hypersdk_export_duration_seconds", 45.0)
    recording.observe("hypersdk_export_duration_seconds", 5.0)
    samples = scrape_public()
    assert value(samples, "hypersdk_webhook_deliveries_total", outcome="failed") == 3
    assert value(samples, "hypersdk_export_duration_seconds_bucket", le="10.0") == 1
    assert value(samples, "hypersdk_export_duration_seconds_bucket", le="30.0") == 1
    assert value(samples, "hypersdk_export_duration_seconds_bucket", le="60.0") == 2
    assert value(samples, "hypersdk_export_duration_seconds_bucket", le="+Inf") == 2
    assert value(samples, "hypersdk_export_duration_seconds_sum") == 50.0


def scrape_public() -> Samples:
    from django.test import override_settings

    with override_settings(HYPERSDK_METRICS_PUBLIC=True):
        return scrape(None)


# ---- who may scrape ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_need_a_token_and_say_which_scheme(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert b"hypersdk_" not in response.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401


@pytest.mark.django_db
def test_an_account_without_a_role_is_refused_with_403(client, django_user_model):
    token = token_for(django_user_model, "nobody", None)
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 403
    assert b"hypersdk-viewers" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_may_scrape_with_token_or_bearer(django_user_model, role):
    token = token_for(django_user_model, f"{role}-scraper", role)
    for scheme in ("Token", "Bearer"):
        assert ("hypersdk_exports_started_total", ()) in scrape(token, scheme=scheme)


@pytest.mark.django_db
def test_metrics_can_be_made_public(client, settings):
    settings.HYPERSDK_METRICS_PUBLIC = True
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"# TYPE hypersdk_export_duration_seconds histogram" in response.content


def test_metrics_are_not_part_of_the_api_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "/metrics" not in schema["paths"]
