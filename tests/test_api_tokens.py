"""API tokens are stored as digests: the database never holds one that works, yet every door
that takes a token (API as Token or Bearer, /metrics, websockets, CLIs) still accepts it."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.core.management import call_command
from django.db import connection, connections
from rest_framework.test import APIClient

from api_tokens.service import issue_token, user_for_token
from hypersdk.asgi import application

pytestmark = pytest.mark.django_db


def add_user(name: str = "olivia", role: str = "operator") -> str:
    out = StringIO()
    call_command("hypersdk_user", "add", name, "--role", role, stdout=out)
    return re.search(r"^API token: (\S+)$", out.getvalue(), re.M).group(1)


def stored_values() -> str:
    """Every value of every row of every model: what a leaked database would show."""
    return repr([list(model.objects.values_list()) for model in apps.get_models()])


def test_the_database_holds_no_usable_token():
    token = add_user()
    assert user_for_token(token) is not None
    assert token not in stored_values()


def test_a_printed_token_works_as_token_and_as_bearer():
    token = add_user()
    client = APIClient()
    for scheme in ("Token", "Bearer"):
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
        assert client.get("/jobs/query").status_code == 200, scheme
    client.credentials(HTTP_AUTHORIZATION=f"Token {token[:-1]}x")
    assert client.get("/jobs/query").status_code == 401


def test_an_inactive_users_token_is_refused(django_user_model):
    token = add_user()
    django_user_model.objects.filter(username="olivia").update(is_active=False)
    assert user_for_token(token) is None


def test_the_admin_never_shows_a_raw_token(admin_client):
    token = add_user()
    pages = ["/admin/knox/authtoken/"]
    from knox.models import AuthToken

    pages.append(f"/admin/knox/authtoken/{AuthToken.objects.get(user__username='olivia').pk}/change/")
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert token.encode() not in response.content


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_websocket_accepts_the_token_as_bearer_header_and_query(redis_url):
    from asgiref.sync import sync_to_async

    token = await sync_to_async(add_user)("vera", "viewer")
    try:
        for path, headers in (
            (f"/ws/jobs/?token={token}", []),
            ("/ws/jobs/", [(b"authorization", f"Bearer {token}".encode())]),
            ("/ws/jobs/", [(b"authorization", f"Token {token}".encode())]),
        ):
            socket = WebsocketCommunicator(application, path, headers=headers)
            connected, _ = await socket.connect()
            assert connected, (path, headers)
            await socket.disconnect()
        refused = WebsocketCommunicator(application, "/ws/jobs/?token=not-a-token")
        connected, _ = await refused.connect()
        assert not connected
    finally:  # the sync thread's connection, else PostgreSQL cannot drop the test database
        await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
def test_plaintext_tokens_from_before_the_upgrade_are_hashed_and_keep_working(django_user_model):
    """A database from DRF's authtoken days: its keys still log in, and are gone from it."""
    user = django_user_model.objects.create_superuser("admin", "", "pw")
    legacy_key = "0123456789abcdef0123456789abcdef01234567"
    call_command("migrate", "api_tokens", "zero", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) NOT NULL PRIMARY KEY, "
            "created timestamp NOT NULL, user_id integer NOT NULL UNIQUE)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, CURRENT_TIMESTAMP, %s)",
            [legacy_key, user.pk],
        )
    call_command("migrate", "api_tokens", verbosity=0)
    assert "authtoken_token" not in connection.introspection.table_names()
    assert legacy_key not in stored_values()
    if connection.vendor == "sqlite":  # not even in the file's free pages
        connection.close()
        assert legacy_key.encode() not in Path(connection.settings_dict["NAME"]).read_bytes()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {legacy_key}")
    assert client.get("/jobs/query").status_code == 200


def test_each_issued_token_is_new_and_belongs_to_its_user(django_user_model):
    user = django_user_model.objects.create_user("u1")
    first, second = issue_token(user), issue_token(user)
    assert first != second
    assert user_for_token(first) == user_for_token(second) == user


def test_hypersdk_user_token_issues_another_working_token_for_an_existing_user():
    first = add_user()
    out = StringIO()
    call_command("hypersdk_user", "token", "olivia", stdout=out)
    second = re.search(r"^API token: (\S+)$", out.getvalue(), re.M).group(1)
    assert second != first
    assert user_for_token(second) == user_for_token(first) is not None
    assert second not in stored_values()


def test_hypersdk_user_token_for_an_unknown_user_is_a_one_line_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="^no user named 'ghost'$"):
        call_command("hypersdk_user", "token", "ghost", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_scrubs_plaintext_tokens_from_the_admin_history(django_user_model):
    """The admin logged each DRF token it touched with the key as the object's id and name."""
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.contenttypes.models import ContentType

    user = django_user_model.objects.create_superuser("admin", "", "pw")
    legacy_key = "fedcba9876543210fedcba9876543210fedcba98"
    call_command("migrate", "api_tokens", "0001", verbosity=0)
    kept = LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(django_user_model),
        object_id=str(user.pk),
        object_repr="admin",
        action_flag=ADDITION,
    )
    for model in ("token", "tokenproxy"):
        LogEntry.objects.create(
            user=user,
            content_type=ContentType.objects.get_or_create(app_label="authtoken", model=model)[0],
            object_id=legacy_key,
            object_repr=legacy_key,
            action_flag=ADDITION,
        )
    call_command("migrate", "api_tokens", verbosity=0)
    assert legacy_key not in stored_values()
    assert LogEntry.objects.count() == 3  # the history stays, without the keys
    assert LogEntry.objects.get(pk=kept.pk).object_repr == "admin"
    if connection.vendor == "sqlite":
        connection.close()
        assert legacy_key.encode() not in Path(connection.settings_dict["NAME"]).read_bytes()
