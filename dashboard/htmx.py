"""The one place that decides between a full page and an htmx fragment."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.permissions import SAFE_METHODS

from hypersdk.lib import permissions


def wants_partial(request: HttpRequest) -> bool:
    """htmx asked for a fragment; boosted links and history restores want the whole page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(
    request: HttpRequest, template: str, context: dict, *, partial: str | None = None, status: int = 200
) -> HttpResponse:
    """``partial`` for an htmx request (when given), else the full page ``template``."""
    name = partial if partial and wants_partial(request) else template
    return render(request, name, context, status=status)


def row_after_action(
    request: HttpRequest, *, notice: str, back_to: str, template: str, row: str, context: dict
) -> HttpResponse:
    """After an action on one row: the ``row`` fragment for htmx; otherwise back to the list
    ``back_to`` (a URL name), with ``notice`` as a message when there is one."""
    if not wants_partial(request):
        if notice:
            messages.info(request, notice)
        return redirect(back_to)
    return render_page(request, template, context, partial=row)


def role_required(view):
    """Django's login_required, except that htmx requests are told to reload into the login page
    instead of swapping it into a fragment; then the HyperSDK role: viewers may look (GET),
    only operators may act (any other method, i.e. every form), anyone else gets 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            login_url = reverse("dashboard:login")
            if getattr(request, "htmx", None):
                page = request.htmx.current_url_abs_path or reverse("dashboard:home")
                response = HttpResponse(status=401)
                response["HX-Redirect"] = redirect_to_login(page, login_url).url
                return response
            return redirect_to_login(request.get_full_path(), login_url)
        if not permissions.can_view(request.user):
            return _forbidden(request, permissions.NO_ROLE)
        if (
            request.method not in SAFE_METHODS
            and not getattr(view, "viewers_may_post", False)
            and not permissions.can_operate(request.user)
        ):
            return _forbidden(request, permissions.READ_ONLY)
        return view(request, *args, **kwargs)

    return wrapped


def viewers_may_post(view):
    """Under ``role_required``: a view whose POST only reads (the inventory's Refresh, a POST so
    that it is CSRF-protected), which viewers may send too."""
    view.viewers_may_post = True
    return view


def row_action(actions: set[str]):
    """A view acting on one row, called with the URL's ``action`` keyword: POST only, operators
    only (role_required), and an ``action`` not in ``actions`` is a 404."""

    def decorate(view):
        @wraps(view)
        def known_action(request: HttpRequest, *args, action: str, **kwargs) -> HttpResponse:
            if action not in actions:
                raise Http404(action)
            return view(request, *args, action=action, **kwargs)

        return require_POST(role_required(known_action))

    return decorate


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "dashboard/forbidden.html", {"reason": reason}, status=403)
