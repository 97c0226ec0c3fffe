"""Database sessions stored by a digest of the cookie value, never the value itself.

Django's ``db`` engine keeps the cookie's session key as the row's primary key, so a copy of the
database hands out live log-ins. Here the row's key is ``stored_key(cookie value)``: the first
40 hex digits (160 bits, the column's width) of its SHA-256. A session key is 32 random
characters of ``[a-z0-9]`` (~165 bits), so the digest cannot be turned back into a cookie and,
unsalted, it can still be looked up. Everything else (expiry, ``cycle_key`` at log-in,
``flush`` at log-out, websocket sessions) is Django's ``db`` engine unchanged.
"""

from __future__ import annotations

import hashlib
import logging

from django.contrib.sessions.backends import db
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone

# django_session.session_key is a CharField(max_length=40).
STORED_KEY_LENGTH = 40


def stored_key(session_key: str) -> str:
    """The primary key a session with cookie value ``session_key`` is stored under."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:STORED_KEY_LENGTH]


class SessionStore(db.SessionStore):
    """``SESSION_ENGINE = "hypersdk.lib.session_store"``: Django's db sessions, keyed by digest."""

    def _get_session_from_db(self):
        try:
            return self.model.objects.get(
                session_key=stored_key(self.session_key), expire_date__gt=timezone.now()
            )
        except (self.model.DoesNotExist, SuspiciousOperation) as exc:
            _log_suspicious(exc)
            self._session_key = None

    async def _aget_session_from_db(self):
        try:
            return await self.model.objects.aget(
                session_key=stored_key(self.session_key), expire_date__gt=timezone.now()
            )
        except (self.model.DoesNotExist, SuspiciousOperation) as exc:
            _log_suspicious(exc)
            self._session_key = None

    def exists(self, session_key: str) -> bool:
        return self.model.objects.filter(session_key=stored_key(session_key)).exists()

    async def aexists(self, session_key: str) -> bool:
        return await self.model.objects.filter(session_key=stored_key(session_key)).aexists()

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        instance.session_key = stored_key(instance.session_key)
        return instance

    async def acreate_model_instance(self, data):
        instance = await super().acreate_model_instance(data)
        instance.session_key = stored_key(instance.session_key)
        return instance

    def delete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if session_key is not None:
            self.model.objects.filter(session_key=stored_key(session_key)).delete()

    async def adelete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if session_key is not None:
            await self.model.objects.filter(session_key=stored_key(session_key)).adelete()


def _log_suspicious(exc: Exception) -> None:
    if isinstance(exc, SuspiciousOperation):
        logging.getLogger(f"django.security.{exc.__class__.__name__}").warning(str(exc))
