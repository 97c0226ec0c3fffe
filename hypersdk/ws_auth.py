"""Websocket authentication: an API token (``?token=``, ``Authorization: Token|Bearer``) or the session.

Browsers always send an Origin header, which must then name an allowed host (against
cross-site websocket hijacking with the session cookie); CLI clients send none and use a token.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator


@database_sync_to_async
def _user_for_token(key: str):
    from api_tokens.service import user_for_token

    return user_for_token(key)


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
                scope = {**scope, "user": user}
        return await self.inner(scope, receive, send)


class OriginIfPresentValidator:
    """Check Origin like AllowedHostsOriginValidator, but let clients that send none through."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        has_origin = any(name == b"origin" for name, _ in scope.get("headers", []))
        app = self.checked if has_origin else self.inner
        return await app(scope, receive, send)


def websocket_auth(inner):
    return OriginIfPresentValidator(AuthMiddlewareStack(TokenAuthMiddleware(inner)))
