"""Domain errors, and the one place each door turns them into its own answer.

Services raise these; no view, admin action or command translates them by hand:

- the API (``hypersdk.api_errors``, DRF's EXCEPTION_HANDLER): NotFoundError → 404,
  ConflictError → 409, InvalidInput → 400 ``{field: [message]}``, each with ``str(exc)``;
- Django's pages (the dashboard, the admin): ``DomainErrorMiddleware`` → the 404 page for a
  NotFoundError; the dashboard and the admin show the other errors' ``str(exc)`` as a message;
- the CLIs: ``cli.backends`` turns any DomainError into a one-line ``error: ...`` and exit 1.

This module imports nothing from Django at load time, so a service can import it anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


class DomainError(Exception):
    """A request a service refuses for a reason its caller can act on. ``str(exc)`` is the one
    line every door shows: it names the thing and never holds a secret."""


class NotFoundError(DomainError, LookupError):
    """The named job, schedule, webhook or delivery does not exist."""


class ConflictError(DomainError):
    """The thing exists but cannot do this now."""


class InvalidInput(DomainError, ValueError):
    """Bad input on one field: ``field`` names it for the API's 400 body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class DomainErrorMiddleware:
    """For Django's own views (the dashboard, the admin): a NotFoundError is the 404 page, as if
    the view had raised Http404. DRF views never get here: their handler answers first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, NotFoundError):
            from django.http import Http404

            raise Http404(str(exc)) from exc  # Django's handler renders it as the view's own 404
        return None
