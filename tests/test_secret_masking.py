"""Secrets beside secrets: a webhook URL's user:password@ (and query values) and its custom
header values are stored encrypted and shown masked everywhere but in the creating answer; a
vCenter URL with credentials is refused, and old ones move into the encrypted fields."""

from __future__ import annotations

import base64
import importlib

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from api_tokens.service import issue_token
from cli.backends import LocalBackend
from exports.models import VCenter
from hypersdk.lib import redaction
from tests.factories import make_user
from tests.webhook_receiver import Receiver
from webhooks import service
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
SECRETS = ["hunter2", "s3cret-bearer", "tok-abc123"]


@pytest.fixture
def receiver(receiver, settings):
    """The shared receiver, with loopback webhook targets allowed."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return receiver


@pytest.fixture
def people(db) -> dict:
    return {
        "alice": make_user("alice", "operator", password=PASSWORD),
        "victor": make_user("victor", "viewer", password=PASSWORD),
        "root": make_user("root", password=PASSWORD, superuser=True),
    }


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


def secret_url(receiver: Receiver) -> str:
    return f"http://hook:hunter2@127.0.0.1:{receiver.port}/hook?token=tok-abc123&team=ops"


@pytest.fixture
def created(people, receiver) -> dict:
    body = {"url": secret_url(receiver), "headers": {"Authorization": "Bearer s3cret-bearer"}}
    response = api_as(people["alice"]).post("/webhooks", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_the_creating_answer_echoes_what_was_given(created, receiver):
    assert created["url"] == secret_url(receiver)
    assert created["headers"] == {"Authorization": "Bearer s3cret-bearer"}


@pytest.mark.parametrize("who", ["victor", "alice"])
def test_every_api_read_shows_them_masked(created, people, receiver, who):
    client = api_as(people[who])
    listed = client.get("/webhooks")
    one = client.get(f"/webhooks/{created['id']}")
    for response in (listed, one):
        assert response.status_code == 200
        assert_no_secret(response.content.decode())
    shown = one.json()
    assert shown["url"] == f"http://***@127.0.0.1:{receiver.port}/hook?token=***&team=***"
    assert shown["headers"] == {"Authorization": "***"}


def test_the_dashboard_and_the_admin_show_them_masked(created, people, client):
    client.force_login(people["victor"])
    page = client.get("/ui/webhooks/")
    assert page.status_code == 200 and "***@127.0.0.1" in page.content.decode()
    assert_no_secret(page.content.decode())
    client.force_login(people["root"])
    for url in ("/admin/webhooks/webhook/", f"/admin/webhooks/webhook/{created['id']}/change/"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert_no_secret(page.content.decode())


def test_hyperctl_shows_them_masked(created):
    backend = LocalBackend()
    assert_no_secret(repr(backend.list_webhooks()))
    assert_no_secret(repr(backend.get_webhook(created["id"])))


def test_they_are_stored_encrypted(created):
    row = Webhook.objects.filter(id=created["id"]).values().get()
    assert_no_secret(repr(row))


def test_deliveries_still_carry_the_credentials_and_headers(created, receiver):
    result = service.test_webhook(created["id"])
    assert result.ok, result.error
    request = receiver.requests[-1]
    assert request.headers["authorization"] == "Bearer s3cret-bearer"
    assert request.path == "/hook?token=tok-abc123&team=ops"


def test_basic_auth_from_the_url_reaches_the_receiver(people, receiver):
    webhook, _ = service.add_webhook(f"http://hook:hunter2@127.0.0.1:{receiver.port}/hook")
    assert service.test_webhook(webhook.id).ok
    expected = "Basic " + base64.b64encode(b"hook:hunter2").decode()
    assert receiver.requests[-1].headers["authorization"] == expected


def test_existing_plain_webhooks_are_encrypted_by_the_migration(receiver):
    webhook, _ = service.add_webhook("http://127.0.0.1:9/x")
    plain = f"http://hook:hunter2@127.0.0.1:{receiver.port}/hook"
    # As a row written before the migration: plain URL and header values, nothing encrypted.
    Webhook.objects.filter(id=webhook.id).update(
        url=plain, headers={"X-Key": "s3cret-bearer"}, url_encrypted="", headers_encrypted=""
    )
    migration = importlib.import_module("webhooks.migrations.0002_webhook_target_encrypted")
    migration.encrypt_targets(apps, None)
    webhook.refresh_from_db()
    assert webhook.url == f"http://***@127.0.0.1:{receiver.port}/hook"
    assert webhook.headers == {"X-Key": "***"}
    assert (webhook.target_url, webhook.target_headers) == (plain, {"X-Key": "s3cret-bearer"})


def test_importing_the_same_secret_webhook_twice_is_idempotent(receiver):
    entry = {"url": secret_url(receiver), "headers": {"X-Key": "s3cret-bearer"}}
    created, message = service.import_webhook(entry)
    assert created and "hunter2" not in message
    again, message = service.import_webhook(entry)
    assert not again and "exists" in message
    assert Webhook.objects.count() == 1


def test_the_mask_helper():
    assert redaction.mask_url("https://u:p@h:8443/p?a=1&b=") == "https://***@h:8443/p?a=***&b=***"
    assert redaction.mask_url("https://h/p") == "https://h/p"
    assert redaction.mask_url("https://u@h/p#frag") == "https://***@h/p"
    assert redaction.mask_headers({"A": "1", "B": "2"}) == {"A": "***", "B": "***"}


# ---- vCenter -------------------------------------------------------------------------------


def test_a_vcenter_url_with_credentials_is_refused(people, client):
    vcenter = VCenter(name="vc1", url="https://administrator:hunter2@vc.example/sdk", username="u")
    with pytest.raises(ValidationError, match="no user name or password in the URL"):
        vcenter.full_clean()
    client.force_login(people["root"])
    form = {
        "name": "vc1",
        "url": "https://administrator:hunter2@vc.example/sdk",
        "username": "administrator",
        "password": "x",
        "ca_bundle": "",
    }
    page = client.post("/admin/exports/vcenter/add/", form)
    assert page.status_code == 200 and "no user name or password in the URL" in page.content.decode()
    assert not VCenter.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["https://vc.example/sdk?password=hunter2", "https://vc.example/sdk#hunter2", "vc.example?pw=hunter2"],
)
def test_a_vcenter_url_with_a_query_or_fragment_is_refused(people, client, url):
    with pytest.raises(ValidationError, match="no query string or fragment in the URL"):
        VCenter(name="vc1", url=url, username="u").full_clean()
    client.force_login(people["root"])
    form = {"name": "vc1", "url": url, "username": "administrator", "password": "x", "ca_bundle": ""}
    page = client.post("/admin/exports/vcenter/add/", form)
    assert page.status_code == 200 and "no query string or fragment in the URL" in page.content.decode()
    assert (
        "hunter2" not in str(VCenter.objects.values_list("url", flat=True)) and not VCenter.objects.exists()
    )


def test_existing_vcenter_url_credentials_move_into_the_encrypted_fields():
    VCenter.objects.create(name="vc1", url="https://administrator:hun%40ter2@vc.example:8443/sdk")
    migration = importlib.import_module("exports.migrations.0003_vcenter_url_credentials")
    migration.move_url_credentials(apps, None)
    vcenter = VCenter.objects.get(name="vc1")
    assert vcenter.url == "https://vc.example:8443/sdk"
    assert (vcenter.username, vcenter.password) == ("administrator", "hun@ter2")
    assert "hun" not in vcenter.password_encrypted
