"""Open job websockets close when access is revoked, and their Origin must be ours exactly:
Channels' WebsocketCommunicator over the real Redis layer."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from knox.models import AuthToken

from api_tokens.service import issue_token
from hypersdk.asgi import application
from tests.factories import make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("close_connections_of_the_sync_thread"),
]

PASSWORD = "correct horse battery"
CLOSED_UNAUTHORIZED = {"type": "websocket.close", "code": 4401}
CLOSED_FORBIDDEN = {"type": "websocket.close", "code": 4403}


@pytest.fixture(autouse=True, params=["periodic re-check", "revocation signal"])
def closing_path(request, settings):
    """Each revocation closes the socket by either path alone: the periodic re-check (made
    quick), or the signal to the user's group (with a re-check too slow to matter)."""
    settings.HYPERSDK_WS_RECHECK_SECONDS = 0.05 if request.param == "periodic re-check" else 3600
    return request.param


@pytest.fixture
def victor(db):
    return make_user("victor", "viewer", password=PASSWORD)


async def open_socket(**kwargs) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, **kwargs)
    connected, _ = await communicator.connect()
    assert connected
    # Several re-checks pass while access stands: the socket stays open.
    assert await communicator.receive_nothing(timeout=0.4)
    return communicator


async def token_socket(user) -> tuple[WebsocketCommunicator, AuthToken]:
    token, key = await sync_to_async(AuthToken.objects.create)(user=user, expiry=None)
    return await open_socket(path=f"/ws/jobs/?token={key}"), token


async def session_socket(user) -> tuple[WebsocketCommunicator, Client]:
    browser = Client()
    assert await sync_to_async(browser.login)(username=user.username, password=PASSWORD)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    return await open_socket(path="/ws/jobs/", headers=[(b"cookie", cookie)]), browser


# A socket opened with each credential, and how that credential is revoked: the browser logs
# out (session), the token is deleted (token).
SOCKETS = {"session": session_socket, "token": token_socket}
REVOKE = {"session": lambda browser: browser.logout(), "token": lambda token: token.delete()}


@pytest.mark.parametrize("credential", ["session", "token"])
async def test_revoking_the_credential_closes_the_open_socket(redis_url, victor, credential):
    socket, held = await SOCKETS[credential](victor)
    await sync_to_async(REVOKE[credential])(held)
    assert await socket.receive_output(timeout=5) == CLOSED_UNAUTHORIZED


async def test_logging_out_one_browser_leaves_the_other_browsers_socket_open(redis_url, victor):
    first, browser = await session_socket(victor)
    second, _ = await session_socket(victor)
    await sync_to_async(browser.logout)()
    assert await first.receive_output(timeout=5) == CLOSED_UNAUTHORIZED
    assert await second.receive_nothing(timeout=0.4)
    await second.disconnect()


@pytest.mark.parametrize("credential", ["session", "token"])
async def test_removing_the_role_closes_the_open_socket(redis_url, victor, credential):
    socket, _ = await SOCKETS[credential](victor)
    await sync_to_async(victor.groups.clear)()
    assert await socket.receive_output(timeout=5) == CLOSED_FORBIDDEN


async def test_deactivating_the_user_closes_the_open_socket(redis_url, victor):
    socket, _ = await token_socket(victor)
    victor.is_active = False
    await sync_to_async(victor.save)()
    assert await socket.receive_output(timeout=5) == CLOSED_UNAUTHORIZED


@pytest.mark.parametrize("closing_path", ["periodic re-check"], indirect=True)  # no signal for it
async def test_changing_the_password_closes_the_session_socket(redis_url, victor):
    socket, _ = await session_socket(victor)
    victor.set_password("another horse")
    await sync_to_async(victor.save)()
    assert await socket.receive_output(timeout=5) == CLOSED_UNAUTHORIZED


# ---- Origin --------------------------------------------------------------------------------


async def connect_from(victor, host: bytes, origin: bytes, scheme: str = "ws") -> bool:
    key = await sync_to_async(issue_token)(victor)
    communicator = WebsocketCommunicator(
        application, f"/ws/jobs/?token={key}", headers=[(b"host", host), (b"origin", origin)]
    )
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect()
    if connected:
        await communicator.disconnect()
    return connected


async def test_an_origin_on_another_port_of_the_same_host_is_refused(redis_url, victor):
    assert not await connect_from(victor, b"127.0.0.1:8080", b"http://127.0.0.1:9999")
    assert await connect_from(victor, b"127.0.0.1:8080", b"http://127.0.0.1:8080")


async def test_an_origin_with_another_scheme_is_refused(redis_url, victor):
    assert not await connect_from(victor, b"127.0.0.1:8080", b"https://127.0.0.1:8080")
    assert not await connect_from(victor, b"localhost", b"https://localhost")  # 80 is not 443
    assert await connect_from(victor, b"localhost", b"http://localhost:80")


async def test_the_public_url_behind_a_tls_proxy_is_a_trusted_origin(redis_url, victor, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "hypersdk.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://hypersdk.example.com"]
    host = b"hypersdk.example.com"
    assert await connect_from(victor, host, b"https://hypersdk.example.com")
    assert not await connect_from(victor, host, b"https://hypersdk.example.com:8443")
    assert not await connect_from(victor, host, b"https://hypersdk.example.com.evil.example")
