"""Who may do what, with named people: alice the operator, victor the viewer, nobody without a
role, root the superuser. The API, the dashboard, the websockets and the log-in limit."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connections
from rest_framework.test import APIClient

from api_tokens.service import issue_token
from exports import jobs
from exports.models import Job
from hypersdk.asgi import application
from hypersdk.lib import login_throttle
from hypersdk.lib.permissions import NO_ROLE, OPERATORS, READ_ONLY, VIEWERS, grant_role
from schedules.models import Schedule
from tests.conftest import wait_for
from tests.factories import make_user
from webhooks import service as webhooks
from webhooks.models import Webhook

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_login_counters")]

HTMX = {"HTTP_HX_REQUEST": "true"}
PASSWORD = "correct horse battery"


@pytest.fixture
def people(db) -> dict:
    return {
        "alice": make_user("alice", "operator", password=PASSWORD),
        "victor": make_user("victor", "viewer", password=PASSWORD),
        "nobody": make_user("nobody", password=PASSWORD),
        "root": make_user("root", password=PASSWORD, superuser=True),
    }


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


@pytest.fixture
def export_dir(tmp_path, settings):
    settings.HYPERSDK_EXPORT_ROOTS = [str(tmp_path)]
    return tmp_path


@pytest.fixture
def pending_job(export_dir) -> Job:
    job_id = jobs.submit_jobs(
        [{"vm_path": "/dc/vm/prod/web01", "output_path": str(export_dir / "w")}]
    ).job_ids[0]
    return Job.objects.get(id=job_id)


@pytest.fixture
def schedule(people, export_dir) -> dict:
    body = {"name": "nightly", "cron": "0 2 * * *", "vm_path": "/dc/vm/prod/web01"}
    response = api_as(people["alice"]).post("/schedules", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def webhook(settings) -> Webhook:
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return webhooks.add_webhook("http://127.0.0.1:9/hook")[0]


def test_the_migration_creates_both_groups():
    assert set(Group.objects.filter(name__in=[OPERATORS, VIEWERS]).values_list("name", flat=True)) == {
        OPERATORS,
        VIEWERS,
    }


# ---- API -----------------------------------------------------------------------------------

READS = ["/jobs/query", "/status", "/schedules", "/webhooks"]


@pytest.mark.parametrize("path", READS)
def test_operators_viewers_and_superusers_read_the_api(people, path):
    for name in ("alice", "victor", "root"):
        assert api_as(people[name]).get(path).status_code == 200, (name, path)


@pytest.mark.parametrize("path", READS)
def test_an_account_without_a_role_gets_403_saying_why(people, path):
    response = api_as(people["nobody"]).get(path)
    assert response.status_code == 403 and response.json() == {"detail": NO_ROLE}


def test_a_stranger_gets_401_everywhere_but_health(db):
    assert APIClient().get("/jobs/query").status_code == 401
    assert APIClient().get("/health").status_code == 200
    assert APIClient().get("/api/schema/").status_code == 401
    docs = APIClient().get("/api/docs/")  # a browser: to the log-in page and back
    assert docs.status_code == 302 and docs["Location"] == "/ui/login/?next=/api/docs/"
    assert APIClient().get("/metrics").status_code == 401


def test_the_schema_and_its_docs_need_a_role_and_a_viewer_reads_them(people, client):
    assert api_as(people["victor"]).get("/api/schema/").status_code == 200
    assert api_as(people["victor"]).get("/api/docs/").status_code == 200
    assert api_as(people["nobody"]).get("/api/schema/").status_code == 403
    client.force_login(people["victor"])  # a browser logged in to the dashboard
    assert client.get("/api/docs/").status_code == 200


def test_a_viewer_cannot_submit_and_nothing_is_created(people, export_dir):
    body = {"vm_path": "/dc/vm/prod/web01", "output_path": str(export_dir / "web01")}
    response = api_as(people["victor"]).post("/jobs/submit", body, format="json")
    assert response.status_code == 403 and response.json() == {"detail": READ_ONLY}
    assert not Job.objects.exists()
    assert api_as(people["nobody"]).post("/jobs/submit", body, format="json").json() == {"detail": NO_ROLE}
    assert not Job.objects.exists()
    assert api_as(people["alice"]).post("/jobs/submit", body, format="json").status_code == 202
    # Another path: the first job owns web01 while it is pending.
    again = {**body, "output_path": str(export_dir / "web01-again")}
    assert api_as(people["root"]).post("/jobs/submit", again, format="json").status_code == 202


def test_a_viewer_cannot_cancel(people, pending_job):
    assert api_as(people["victor"]).post(f"/jobs/{pending_job.id}/cancel").status_code == 403
    assert Job.objects.get(id=pending_job.id).status == Job.Status.PENDING
    assert api_as(people["victor"]).get(f"/jobs/{pending_job.id}").status_code == 200
    assert api_as(people["alice"]).post(f"/jobs/{pending_job.id}/cancel").status_code == 200
    assert Job.objects.get(id=pending_job.id).status == Job.Status.CANCELLED


def test_a_viewer_cannot_change_schedules(people, schedule):
    victor = api_as(people["victor"])
    path = f"/schedules/{schedule['id']}"
    assert victor.patch(path, {"cron": "0 3 * * *"}, format="json").status_code == 403
    assert victor.post(f"{path}/trigger").status_code == 403
    assert victor.post(f"{path}/disable").status_code == 403
    assert victor.delete(path).status_code == 403
    assert victor.post("/schedules", {**schedule, "name": "other"}, format="json").status_code == 403
    assert list(Schedule.objects.values_list("cron", "enabled")) == [("0 2 * * *", True)]
    assert not Job.objects.exists()
    assert victor.get(path).status_code == 200


def test_a_viewer_cannot_change_webhooks(people, webhook):
    victor = api_as(people["victor"])
    assert victor.post("/webhooks", {"url": "http://127.0.0.1:9/other"}, format="json").status_code == 403
    assert victor.post(f"/webhooks/{webhook.id}/test").status_code == 403
    assert victor.delete(f"/webhooks/{webhook.id}").status_code == 403
    assert list(Webhook.objects.values_list("id", flat=True)) == [webhook.id]
    assert not webhook.deliveries.exists()
    assert victor.get(f"/webhooks/{webhook.id}/deliveries").status_code == 200


# ---- dashboard -----------------------------------------------------------------------------


def logged_in(client, user):
    client.force_login(user)
    return client


def test_a_viewer_sees_the_job_page_without_the_cancel_button(client, people, pending_job):
    page = logged_in(client, people["victor"]).get(f"/ui/jobs/{pending_job.id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert pending_job.vm_path in html and "Cancel job" not in html
    alice_page = logged_in(client, people["alice"]).get(f"/ui/jobs/{pending_job.id}/").content.decode()
    assert "Cancel job" in alice_page


def test_a_viewer_s_cancel_post_is_403(client, people, pending_job):
    response = logged_in(client, people["victor"]).post(f"/ui/jobs/{pending_job.id}/actions/", **HTMX)
    assert response.status_code == 403 and READ_ONLY in response.content.decode()
    assert Job.objects.get(id=pending_job.id).status == Job.Status.PENDING


def test_a_viewer_sees_the_converter_without_its_form_and_cannot_post_it(client, people, export_dir):
    logged_in(client, people["victor"])
    html = client.get("/ui/converter/").content.decode()
    assert "Start Export" not in html and "viewer role" in html
    form = {"vm_path": "/dc/vm/prod/web01", "target_format": "qcow2", "conversion_timeout": "120"}
    assert client.post("/ui/converter/", form).status_code == 403
    assert not Job.objects.exists()
    assert "Start Export" in logged_in(client, people["alice"]).get("/ui/converter/").content.decode()


def test_a_viewer_sees_schedules_without_actions_and_cannot_trigger(client, people, schedule):
    logged_in(client, people["victor"])
    html = client.get("/ui/schedules/").content.decode()
    assert "nightly" in html and "Run now" not in html and "Disable" not in html
    assert client.post(f"/ui/schedules/{schedule['id']}/trigger/", **HTMX).status_code == 403
    assert client.post(f"/ui/schedules/{schedule['id']}/disable/").status_code == 403
    assert not Job.objects.exists() and Schedule.objects.get().enabled
    html = logged_in(client, people["alice"]).get("/ui/schedules/").content.decode()
    assert "Run now" in html and "Disable" in html


def test_a_viewer_sees_webhooks_without_actions_and_cannot_test_them(client, people, webhook):
    logged_in(client, people["victor"])
    html = client.get("/ui/webhooks/").content.decode()
    assert webhook.url in html and "Send test" not in html
    assert client.post(f"/ui/webhooks/{webhook.id}/test/").status_code == 403
    assert client.post(f"/ui/webhooks/{webhook.id}/disable/").status_code == 403
    assert not webhook.deliveries.exists() and Webhook.objects.get().enabled
    assert "Send test" in logged_in(client, people["alice"]).get("/ui/webhooks/").content.decode()


@pytest.mark.parametrize("path", ["/", "/ui/jobs/", "/ui/converter/", "/ui/schedules/", "/ui/webhooks/"])
def test_an_account_without_a_role_gets_a_403_page_on_the_dashboard(client, people, path):
    response = logged_in(client, people["nobody"]).get(path)
    assert response.status_code == 403 and NO_ROLE in response.content.decode()


def test_the_admin_is_for_staff_not_for_operators(client, people):
    response = logged_in(client, people["alice"]).get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert logged_in(client, people["root"]).get("/admin/").status_code == 200


# ---- websockets ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_viewers_and_operators_watch_jobs_and_others_are_refused(redis_url, django_user_model):
    def tokens() -> dict[str, str]:
        keys = {}
        for name, role in (("alice", "operator"), ("victor", "viewer"), ("nobody", None)):
            user = django_user_model.objects.create_user(name, password=PASSWORD)
            if role:
                grant_role(user, role)
            keys[name] = issue_token(user)
        return keys

    keys = await sync_to_async(tokens)()
    try:
        for name in ("alice", "victor"):
            socket = WebsocketCommunicator(application, f"/ws/jobs/?token={keys[name]}")
            connected, _ = await socket.connect()
            assert connected, name
            await socket.disconnect()
        socket = WebsocketCommunicator(application, f"/ws/jobs/?token={keys['nobody']}")
        connected, code = await socket.connect()
        assert not connected and code == 4403
    finally:
        await sync_to_async(connections.close_all)()


# ---- log-in rate limit ---------------------------------------------------------------------


def fail_logins(client, username: str, times: int, url: str = "/ui/login/") -> list[int]:
    return [client.post(url, {"username": username, "password": "wrong"}).status_code for _ in range(times)]


def test_the_sixth_wrong_password_is_locked_out_with_a_clear_429(client, people, settings):
    assert settings.HYPERSDK_LOGIN_MAX_FAILURES == 5
    assert fail_logins(client, "alice", 5) == [200] * 5
    response = client.post("/ui/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert int(response["Retry-After"]) == settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS
    assert "_auth_user_id" not in client.session  # even the right password is not checked now


def test_a_lockout_is_per_user_name_and_ends_with_its_window(client, people, settings):
    # A short window, so the counters really expire in the cache (locmem or Redis); a fast
    # hasher, so the five failures take a small part of it.
    settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS = WINDOW = 2
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for person in (people["alice"], people["victor"]):
        person.set_password(PASSWORD)
        person.save()
    first_failure = time.monotonic()
    fail_logins(client, "alice", 5)
    response = client.post("/ui/login/", {"username": "victor", "password": PASSWORD})
    assert response.status_code == 302  # victor, from the same address, is not locked out
    client.logout()
    assert client.post("/ui/login/", {"username": "alice", "password": PASSWORD}).status_code == 429
    wait_for(lambda: not login_throttle.is_locked_out("alice", "127.0.0.1"), message="the window to end")
    assert time.monotonic() - first_failure >= WINDOW  # not before the window ended
    response = client.post("/ui/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302


def test_a_successful_log_in_resets_the_count(client, people):
    fail_logins(client, "alice", 4)
    assert client.post("/ui/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    client.logout()
    assert fail_logins(client, "alice", 4) == [200] * 4  # counting starts again


def test_one_address_spraying_many_names_gets_no_second_try_for_them(client, people):
    for n in range(20):
        fail_logins(client, f"guess{n}", 1)
    response = client.post("/ui/login/", {"username": "guess3", "password": PASSWORD})
    assert response.status_code == 429


def test_the_admin_log_in_is_limited_the_same_way(client, people):
    assert fail_logins(client, "root", 5, url="/admin/login/") == [200] * 5
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 429 and "Too many failed log-ins" in response.content.decode()


# ---- accounts ------------------------------------------------------------------------------


def test_bootstrap_admin_still_makes_a_superuser_who_operates():
    out = StringIO()
    call_command("bootstrap_admin", stdout=out)
    token = out.getvalue().split("API token: ")[1].split()[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/schedules", {}, format="json").status_code == 400  # allowed, then validated


def test_hypersdk_user_adds_a_viewer_whose_token_reads_but_does_not_write():
    out = StringIO()
    call_command("hypersdk_user", "add", "vera", "--role", "viewer", stdout=out)
    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {lines['API token']}")
    assert client.get("/jobs/query").status_code == 200
    assert client.post("/schedules", {}, format="json").status_code == 403
    assert APIClient().login(username="vera", password=lines["password"])
    with pytest.raises(CommandError, match="exists already"):
        call_command("hypersdk_user", "add", "vera", "--role", "operator", stdout=StringIO())
