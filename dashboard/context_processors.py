"""Templates show action buttons and forms only to accounts that may use them."""

from __future__ import annotations

from django.http import HttpRequest

from hypersdk.lib import permissions


def role(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    return {"can_operate": permissions.can_operate(user), "hypersdk_role": permissions.role_of(user)}
