"""Websocket authentication: a DRF token (``?token=`` or ``Authorization: Token``) or the session.

Browsers always send an Origin header, which must then be the socket's own origin — scheme,
host and port, as the browser reached us (Host header; ``wss`` or the proxy's TLS header means
https), on an allowed host — or one of ``CSRF_TRUSTED_ORIGINS`` (``HYPERSDK_PUBLIC_URL``):
against cross-site websocket hijacking with the session cookie. CLI clients send none and use
a token.

An open socket is not trusted forever: ``watch_access`` re-reads its credentials every
``HYPERSDK_WS_RECHECK_SECONDS`` and closes it once the token is deleted, the session logged
out, the user deactivated or the role taken away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from importlib import import_module
from urllib.parse import parse_qs, urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import validate_host

logger = logging.getLogger(__name__)

UNAUTHORIZED, FORBIDDEN = 4401, 4403
TOKEN_SCOPE_KEY = "hypersdk_token"


def _user_for_token_sync(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else None


_user_for_token = database_sync_to_async(_user_for_token_sync)


def _token_from(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value.startswith(b"Token "):
            return value[6:].decode()
    query = parse_qs(scope.get("query_string", b"").decode())
    return query.get("token", [None])[0]


class TokenAuthMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        key = _token_from(scope)
        if key:
            user = await _user_for_token(key)
            if user is not None:
                scope = {**scope, "user": user, TOKEN_SCOPE_KEY: key}
        return await self.inner(scope, receive, send)


# ---- Origin --------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the default port filled in; None if it does not parse."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.lower(), port


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _own_origin(scope) -> tuple[str, str, int] | None:
    """The origin a browser used to open this socket: its Host and the scheme it came over."""
    host = _header(scope, b"host")
    if host is None and scope.get("server"):
        server_host, server_port = scope["server"]
        host = f"{server_host}:{server_port}"
    if not host:
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:  # as Django trusts it for HTTP requests
        meta_name, value = proxy_header
        header_name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        if (_header(scope, header_name) or "").split(",")[0].strip() == value:
            scheme = "https"
    key = _origin_key(scheme, host)
    if key is None or not validate_host(key[1], settings.ALLOWED_HOSTS):
        return None
    return key


def origin_allowed(scope, origin: str) -> bool:
    """True if ``origin`` is the socket's own origin (scheme, host and port) or a trusted one."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    wanted = _origin_key(parts.scheme, parts.netloc)
    if wanted is None:
        return False
    if wanted == _own_origin(scope):
        return True
    trusted = (urlsplit(entry) for entry in settings.CSRF_TRUSTED_ORIGINS)
    return any(_origin_key(entry.scheme, entry.netloc) == wanted for entry in trusted)


class OriginValidator:
    """Refuse a socket whose Origin is not ours; let clients that send none (CLIs) through."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if origin is not None and not origin_allowed(scope, origin):
            # Before the handshake is accepted: the client sees a refused connection (403).
            await send({"type": "websocket.close", "code": FORBIDDEN})
            return None
        return await self.inner(scope, receive, send)


def websocket_auth(inner):
    return OriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(inner)))


# ---- Revocation ----------------------------------------------------------------------------


def _session_user_sync(session_key: str | None):
    """The user a session names now, verified like Django's get_user; None if logged out."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
    from django.utils.crypto import constant_time_compare

    if not session_key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    try:
        user_id, backend_path = session[SESSION_KEY], session[BACKEND_SESSION_KEY]
    except KeyError:  # deleted (logged out), expired, or never logged in
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not constant_time_compare(
        session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
    ):
        return None
    return user


@database_sync_to_async
def current_user(scope):
    """Who the socket's credentials name now (a fresh row), or None if they no longer do."""
    key = scope.get(TOKEN_SCOPE_KEY)
    if key:
        return _user_for_token_sync(key)
    session = scope.get("session")
    user = _session_user_sync(getattr(session, "session_key", None))
    return user if user is not None and user.is_active else None


async def watch_access(consumer, may: Callable[[object], Awaitable[bool]]) -> None:
    """Every HYPERSDK_WS_RECHECK_SECONDS, close ``consumer`` (4401 or 4403) once its user is
    gone or ``may(user)`` says no. Run as a task for the socket's lifetime."""
    while True:
        await asyncio.sleep(settings.HYPERSDK_WS_RECHECK_SECONDS)
        try:
            user = await current_user(consumer.scope)
            code = UNAUTHORIZED if user is None else None if await may(user) else FORBIDDEN
        except Exception:  # noqa: BLE001 - a database hiccup: try again next time
            logger.warning("websocket access re-check failed; retrying", exc_info=True)
            continue
        if code is not None:
            await consumer.close(code=code)
            return
