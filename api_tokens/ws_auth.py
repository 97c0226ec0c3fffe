"""Websocket authentication: an API token (``?token=``, ``Authorization: Token|Bearer``) or the session.

Browsers always send an Origin header, which must then be the socket's own origin — scheme,
host and port, as the browser reached us (Host header; ``wss`` or the proxy's TLS header means
https), on an allowed host — or one of ``CSRF_TRUSTED_ORIGINS`` (``HYPERSDK_PUBLIC_URL``):
against cross-site websocket hijacking with the session cookie. CLI clients send none and use
a token.

An open socket is not trusted forever. Logout, token deletion, a role removed and
deactivation send its user's group (``user_group``) a ``hypersdk.revoked`` message: the socket
re-reads its credentials at once and closes if they no longer hold. ``watch_access`` re-reads
them every ``HYPERSDK_WS_RECHECK_SECONDS`` as well, for changes no signal reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from importlib import import_module
from urllib.parse import parse_qs, urlsplit

from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.http.request import validate_host

logger = logging.getLogger(__name__)

UNAUTHORIZED, FORBIDDEN = 4401, 4403
TOKEN_SCOPE_KEY = "hypersdk_token"


def _user_for_token_sync(key: str):
    from api_tokens.service import user_for_token

    return user_for_token(key)


_user_for_token = database_sync_to_async(_user_for_token_sync)


def _token_from(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() in {"token", "bearer"} and token.strip():
                return token.strip()
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
    user = _session_user_sync(session_key_of(scope))
    return user if user is not None and user.is_active else None


Permission = Callable[[object], Awaitable[bool]]


async def recheck_access(consumer, may: Permission) -> bool:
    """Close ``consumer`` (4401, or 4403 without a role) if its credentials no longer hold;
    True if it stays open."""
    try:
        user = await current_user(consumer.scope)
        code = UNAUTHORIZED if user is None else None if await may(user) else FORBIDDEN
    except Exception:  # noqa: BLE001 - a database hiccup: the next check tries again
        logger.warning("websocket access re-check failed; retrying", exc_info=True)
        return True
    if code is not None:
        await consumer.close(code=code)
        return False
    return True


async def watch_access(consumer, may: Permission) -> None:
    """Re-check every HYPERSDK_WS_RECHECK_SECONDS until the socket is closed: the safety net
    under the revocation signals (a change made by SQL, another process without a layer...)."""
    while True:
        await asyncio.sleep(settings.HYPERSDK_WS_RECHECK_SECONDS)
        if not await recheck_access(consumer, may):
            return


def session_key_of(scope) -> str | None:
    return getattr(scope.get("session"), "session_key", None)


def user_group(user_id: object) -> str:
    """The Channels group of every open socket of one user."""
    return f"hypersdk.user.{user_id}"


def announce_revocation(user_id: object, *, session_key: str | None = None) -> None:
    """Tell the user's open sockets, once the change is committed, to check their access now
    (a logged-out session's sockets close at once). Best effort, like the progress publisher."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        message = {"type": "hypersdk.revoked", "session_key": session_key}
        try:
            async_to_sync(layer.group_send)(user_group(user_id), message)
        except Exception as exc:  # noqa: BLE001 - the periodic re-check still closes them
            logger.debug("revocation for user %s not sent: %s", user_id, exc)

    transaction.on_commit(send)


def connect_revocation_signals() -> None:
    """Logout, token deletion, a role group removed and deactivation reach the sockets."""
    from django.contrib.auth import get_user_model, user_logged_out
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from knox.models import AuthToken as Token

    user_model = get_user_model()

    def logged_out(sender, request, user, **kwargs) -> None:
        if user is not None:
            announce_revocation(user.pk, session_key=getattr(request.session, "session_key", None))

    def token_deleted(sender, instance, **kwargs) -> None:
        announce_revocation(instance.user_id)

    def groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
        if action not in ("post_remove", "post_clear"):
            return
        if not reverse:  # user.groups.remove(...) / clear()
            announce_revocation(instance.pk)
        else:  # group.user_set.remove(users...); a clear() names nobody: the re-check covers it
            for user_id in pk_set or ():
                announce_revocation(user_id)

    def user_saved(sender, instance, created, **kwargs) -> None:
        if not created and not instance.is_active:
            announce_revocation(instance.pk)

    user_logged_out.connect(logged_out, dispatch_uid="hypersdk-ws-logout", weak=False)
    post_delete.connect(token_deleted, sender=Token, dispatch_uid="hypersdk-ws-token", weak=False)
    m2m_changed.connect(
        groups_changed, sender=user_model.groups.through, dispatch_uid="hypersdk-ws-groups", weak=False
    )
    post_save.connect(user_saved, sender=user_model, dispatch_uid="hypersdk-ws-user", weak=False)
