"""Domain errors are answered in one place per door: the API's exception handler (404, 409,
400 on a field), Django's pages through one middleware (the 404 page), the admin's actions as a
message, the CLIs as one ``error:`` line and exit status 1."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.http import Http404
from django.test import RequestFactory
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.test import APIClient

from api_tokens.service import issue_token
from exports import jobs
from hypersdk.api_errors import Conflict, as_api_exception
from hypersdk.lib.errors import ConflictError, DomainErrorMiddleware, InvalidInput, NotFoundError
from hypersdk.lib.permissions import grant_role
from schedules import service as schedules
from webhooks import service as webhooks

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(django_user_model) -> APIClient:
    user = django_user_model.objects.create_user("operator", password="operator-pass")
    grant_role(user, "operator")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


@pytest.fixture
def nightly():
    return schedules.create_schedule(
        {"name": "nightly", "cron": "0 2 * * *", "timezone": "UTC", "vm_path": "/dc/vm/prod/web01"}
    )


def test_every_services_errors_are_the_shared_kinds():
    assert issubclass(jobs.JobNotFound, NotFoundError) and issubclass(jobs.JobAlreadyFinished, ConflictError)
    assert issubclass(schedules.ScheduleNotFound, NotFoundError)
    assert issubclass(schedules.ScheduleCannotRun, ConflictError)
    assert issubclass(webhooks.WebhookNotFound, NotFoundError)
    assert issubclass(webhooks.DeliveryNotFound, NotFoundError)
    assert issubclass(webhooks.InvalidWebhook, InvalidInput)


def test_the_handler_maps_each_kind_with_its_message():
    missing = as_api_exception(schedules.ScheduleNotFound("sched-x"))
    assert isinstance(missing, NotFound) and missing.detail == "schedule not found: sched-x"
    busy = as_api_exception(ConflictError("cannot now"))
    assert isinstance(busy, Conflict) and busy.status_code == 409 and busy.detail == "cannot now"
    bad = as_api_exception(webhooks.InvalidWebhook("url", "a URL is required"))
    assert isinstance(bad, ValidationError) and bad.detail == {"url": ["a URL is required"]}
    other = KeyError("x")
    assert as_api_exception(other) is other


@pytest.mark.parametrize(
    ("method", "path", "detail"),
    [
        ("get", "/jobs/job-nope", "job not found: job-nope"),
        ("get", "/jobs/logs/job-nope", "job not found: job-nope"),
        ("post", "/jobs/job-nope/cancel", "job not found: job-nope"),
        ("get", "/schedules/sched-nope", "schedule not found: sched-nope"),
        ("patch", "/schedules/sched-nope", "schedule not found: sched-nope"),
        ("delete", "/schedules/sched-nope", "schedule not found: sched-nope"),
        ("post", "/schedules/sched-nope/enable", "schedule not found: sched-nope"),
        ("post", "/schedules/sched-nope/trigger", "schedule not found: sched-nope"),
        ("get", "/webhooks/wh-nope", "webhook not found: wh-nope"),
        ("delete", "/webhooks/wh-nope", "webhook not found: wh-nope"),
        ("post", "/webhooks/wh-nope/test", "webhook not found: wh-nope"),
        ("get", "/webhooks/wh-nope/deliveries", "webhook not found: wh-nope"),
        ("post", "/webhooks/wh-nope/deliveries/d-1/redeliver", "webhook not found: wh-nope"),
    ],
)
def test_a_missing_thing_is_a_404_naming_it_at_every_api_path(api, method, path, detail):
    response = getattr(api, method)(path, {}, format="json")
    assert response.status_code == 404 and response.json() == {"detail": detail}


def test_an_invalid_webhook_is_a_400_on_its_field(api):
    response = api.post("/webhooks", {"url": "http://hooks.example/x", "format": "fax"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["format"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/ui/jobs/job-nope/"),
        ("get", "/ui/jobs/job-nope/live/"),
        ("post", "/ui/jobs/job-nope/actions/"),
        ("get", "/ui/converter/?job=job-nope"),
        ("post", "/ui/schedules/sched-nope/trigger/"),
        ("post", "/ui/webhooks/wh-nope/test/"),
    ],
)
def test_a_missing_thing_is_the_dashboards_404_page(admin_client, method, path):
    assert getattr(admin_client, method)(path).status_code == 404


def test_the_middleware_leaves_other_errors_to_django():
    middleware = DomainErrorMiddleware(lambda request: None)
    request = RequestFactory().get("/ui/")
    assert middleware.process_exception(request, KeyError("x")) is None
    with pytest.raises(Http404, match="^job not found: job-x$"):
        middleware.process_exception(request, jobs.JobNotFound("job-x"))


def test_the_admin_trigger_of_a_schedule_deleted_meanwhile_is_a_message(admin_client, nightly, monkeypatch):
    def deleted_meanwhile(schedule_id: str):
        raise schedules.ScheduleNotFound(schedule_id)

    monkeypatch.setattr(schedules, "trigger", deleted_meanwhile)
    response = admin_client.post(
        "/admin/schedules/schedule/", {"action": "trigger", "_selected_action": [nightly.id]}, follow=True
    )
    assert response.status_code == 200
    assert f"Schedule not found: {nightly.id}" in response.content.decode()  # the admin capitalizes


def test_the_cli_trigger_of_a_missing_schedule_is_one_error_line():
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("hyperctl", "schedules", "trigger", "sched-nope", stdout=out, stderr=err)
    assert exited.value.code == 1
    assert err.getvalue() == "error: schedule not found: sched-nope\n" and out.getvalue() == ""
