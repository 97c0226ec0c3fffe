"""Log-in rate limiting for the dashboard and the admin (password guessing), in Django's cache.

After HYPERSDK_LOGIN_MAX_FAILURES failed log-ins for one user name from one address, or four
times as many from one address whatever the names, within HYPERSDK_LOGIN_LOCKOUT_SECONDS,
further attempts are answered 429 without checking the password until the window ends. The
counters live in the default cache: per process with the default local-memory cache, shared
if CACHES points at Redis. API tokens are not passwords and are not limited here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

ADDRESS_FACTOR = 4


def _keys(request: HttpRequest) -> tuple[str, str]:
    address = request.META.get("REMOTE_ADDR", "")
    username = request.POST.get("username", "").strip().lower()
    # Hashed: a user name may hold anything, cache keys may not.
    pair = hashlib.sha256(f"{username}\x00{address}".encode(errors="replace")).hexdigest()
    return f"hypersdk:login-failures:user:{pair}", f"hypersdk:login-failures:addr:{address}"


def is_locked_out(request: HttpRequest) -> bool:
    user_key, address_key = _keys(request)
    limit = settings.HYPERSDK_LOGIN_MAX_FAILURES
    return (cache.get(user_key) or 0) >= limit or (cache.get(address_key) or 0) >= limit * ADDRESS_FACTOR


def record_failure(request: HttpRequest) -> None:
    for key in _keys(request):
        # The window starts at the first failure: add() does not extend it.
        cache.add(key, 0, timeout=settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS)


def clear_failures(request: HttpRequest) -> None:
    cache.delete(_keys(request)[0])


def limit_login_attempts(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a log-in view (Django's LoginView, the admin's login): refuse while locked out,
    count a POST that did not log anyone in as a failure."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        if is_locked_out(request):
            minutes = max(1, settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS // 60)
            message = (
                "Too many failed log-ins for this user name or from this address: "
                f"try again in up to {minutes} minute{'s' if minutes != 1 else ''}."
            )
            response = render(request, "dashboard/login_locked.html", {"message": message}, status=429)
            response["Retry-After"] = str(settings.HYPERSDK_LOGIN_LOCKOUT_SECONDS)
            return response
        response = view(request, *args, **kwargs)
        # Both views redirect after a log-in and show the form again (200) after a wrong one.
        if response.status_code in (301, 302, 303):
            clear_failures(request)
        elif response.status_code == 200:
            record_failure(request)
        return response

    return wrapped
