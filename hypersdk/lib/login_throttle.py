"""The one log-in limiter (password guessing), shared by every log-in door.

Doors: the dashboard's log-in, the admin's, DRF's browsable-API log-in (``/api-auth/login/``),
and anything else that calls Django's ``authenticate()`` with a request: the
``ThrottledModelBackend`` refuses a locked-out attempt before the password is checked, and the
door's ``limit_login_attempts`` wrapper turns that into a clear 429 page.

Only wrong credentials count (Django's ``user_login_failed`` signal): a right password refused
for another reason (a non-staff account on the admin's log-in) is not a failure. Within
``HYPERSDK_LOGIN_LOCKOUT_SECONDS`` (the window starts at the first failure) three counters:

- per user name and client address: ``HYPERSDK_LOGIN_MAX_FAILURES`` (5) lock that name from that
  address — the ordinary case, which never touches anyone else;
- per user name, any address: 4x as many lock the name everywhere (guessing spread over many
  addresses);
- per client address, any name: 4x as many make the address "noisy", and a noisy address gets no
  further try for the names that already failed from it. A user who has not failed from it logs
  in as usual, so one guesser behind a NAT or a proxy does not lock out everyone behind it; and
  since names are counted whether or not an account exists, the lock says nothing about which
  names exist.

The client address is ``hypersdk.lib.client_address`` (a trusted proxy's header, else REMOTE_ADDR).
Counters live in the ``login`` cache: Redis when ``REDIS_URL`` is set (several API nodes share
them), else local memory in the one daphne process of a single-node hypervisord. If Redis
cannot be reached they fall back to local memory (logged), so log-ins keep working and limited.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import user_logged_in, user_login_failed
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from hypersdk.lib.client_address import client_address

logger = logging.getLogger(__name__)

FACTOR = 4  # per-name and per-address limits are this many times the per-(name, address) one
CACHE_ALIAS = "login"
FALLBACK_ALIAS = "default"
KEY_PREFIX = "hypersdk-login"


class LockedOut(PermissionDenied):
    """Too many failed log-ins for this user name or from this address; retry after the window."""


def _digest(text: str) -> str:
    # Hashed: a user name may hold anything, cache keys may not.
    return hashlib.sha256(text.encode(errors="replace")).hexdigest()[:32]


def _normalize(username: Any) -> str:
    return str(username or "").strip().lower()


def _keys(username: str, address: str) -> dict[str, str]:
    name = _normalize(username)
    return {
        "pair": f"{KEY_PREFIX}:pair:{_digest(name + chr(0) + address)}",
        "name": f"{KEY_PREFIX}:name:{_digest(name)}",
        "address": f"{KEY_PREFIX}:addr:{_digest(address)}",
    }


def _store_call(method: str, *args, **kwargs):
    """Call the login cache; on a Redis error, the local-memory cache (one warning)."""
    try:
        return getattr(caches[CACHE_ALIAS], method)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - redis-py's errors; the fallback keeps limiting
        if CACHE_ALIAS == FALLBACK_ALIAS:
            raise
        logger.warning("log-in counters: shared cache unavailable (%s), counting in this process", exc)
        return getattr(caches[FALLBACK_ALIAS], method)(*args, **kwargs)


def is_locked_out(username: Any, address: str) -> bool:
    """True while ``username`` may not try a password from ``address`` (see the module doc)."""
    keys = _keys(username, address)
    counts = _store_call("get_many", list(keys.values()))
    pair, name, addr = (counts.get(keys[k]) or 0 for k in ("pair", "name", "address"))
    limit = settings.HYPERSDK_LOGIN_MAX_FAILURES
    return pair >= limit or name >= limit * FACTOR or (addr >= limit * FACTOR and pair >= 1)


def check_login_allowed(request: HttpRequest | None, username: Any) -> None:
    """The one check every door makes before a password is looked at; raises LockedOut."""
    if request is None:  # not a log-in over HTTP (a management command, a test helper)
        return
    if is_locked_out(username, client_address(request)):
        raise LockedOut(lockout_message())


def record_failure(request: HttpRequest, username: Any) -> None:
    window = settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS
    for key in _keys(username, client_address(request)).values():
        # The window starts at the first failure: add() does not extend it.
        _store_call("add", key, 0, timeout=window)
        try:
            _store_call("incr", key)
        except ValueError:  # expired between add and incr
            _store_call("set", key, 1, timeout=window)


def clear_failures(request: HttpRequest, username: Any) -> None:
    """A successful log-in forgets this name's failures from this address (not the others)."""
    _store_call("delete", _keys(username, client_address(request))["pair"])


def forget_all() -> None:
    """Drop every counter (tests, or an administrator lifting all lockouts)."""
    for alias in {CACHE_ALIAS, FALLBACK_ALIAS}:
        cache = caches[alias]
        client = getattr(cache, "_cache", None)
        if hasattr(client, "get_client"):  # Redis: only our keys, never the broker's
            redis = client.get_client(write=True)
            for key in redis.scan_iter(match=f"*{KEY_PREFIX}:*"):
                redis.delete(key)
        else:
            cache.clear()


def lockout_message() -> str:
    minutes = max(1, settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS // 60)
    return (
        "Too many failed log-ins for this user name or from this address: "
        f"try again in up to {minutes} minute{'s' if minutes != 1 else ''}."
    )


@receiver(user_login_failed, dispatch_uid="hypersdk-login-failed")
def _count_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
    if request is None:
        return
    username = credentials.get("username", "")
    try:
        if is_locked_out(username, client_address(request)):
            return  # refused unchecked: not another guess
    except Exception:  # noqa: BLE001 - never turn a failed log-in into a 500
        logger.exception("log-in counters unavailable")
        return
    record_failure(request, username)


@receiver(user_logged_in, dispatch_uid="hypersdk-logged-in")
def _reset_on_success(sender, request: HttpRequest | None, user, **kwargs) -> None:
    if request is not None:
        clear_failures(request, user.get_username())


class ThrottledModelBackend(ModelBackend):
    """Django's model backend, behind the log-in limiter: every door that authenticates a
    password with a request is limited, whether or not it is wrapped for a 429 page."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        from django.contrib.auth import get_user_model

        check_login_allowed(request, username or kwargs.get(get_user_model().USERNAME_FIELD))
        return super().authenticate(request, username=username, password=password, **kwargs)


def limit_login_attempts(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a log-in view (Django's LoginView, the admin's, DRF's): a locked-out POST gets a
    429 page with Retry-After instead of the form; counting happens in the backend's signals."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            try:
                check_login_allowed(request, request.POST.get("username", ""))
            except LockedOut as exc:
                response = render(request, "dashboard/login_locked.html", {"message": str(exc)}, status=429)
                response["Retry-After"] = str(settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS)
                return response
        return view(request, *args, **kwargs)

    return wrapped
