"""Who may do what: operators everything, viewers read-only, anyone else nothing.

Roles are Django groups, so the admin can manage them; superusers count as operators. The API
(DRF's default permission), the dashboard and the websockets all ask the functions here.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from rest_framework.permissions import SAFE_METHODS, BasePermission

OPERATORS = "hypersdk-operators"
VIEWERS = "hypersdk-viewers"
ROLE_GROUPS = {"operator": OPERATORS, "viewer": VIEWERS}

NO_ROLE = f"this account has no HyperSDK role: add it to the {OPERATORS} or {VIEWERS} group"
READ_ONLY = f"viewers may only read: this action needs the {OPERATORS} group"

_CACHE_ATTR = "_hypersdk_role"


def role_of(user: AbstractBaseUser | AnonymousUser | None) -> str | None:
    """``"operator"``, ``"viewer"`` or None; looked up once per user object (one request)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    cached = getattr(user, _CACHE_ATTR, False)
    if cached is not False:
        return cached
    if user.is_superuser:
        role = "operator"
    else:
        names = set(user.groups.filter(name__in=ROLE_GROUPS.values()).values_list("name", flat=True))
        role = "operator" if OPERATORS in names else "viewer" if VIEWERS in names else None
    setattr(user, _CACHE_ATTR, role)
    return role


def can_view(user: Any) -> bool:
    return role_of(user) is not None


def can_operate(user: Any) -> bool:
    return role_of(user) == "operator"


def grant_role(user: AbstractBaseUser, role: str) -> None:
    """Put ``user`` in exactly the group of ``role`` (the groups exist after migrate, but a
    flushed test database may have lost them: they are created on demand)."""
    if role not in ROLE_GROUPS:
        raise ValueError(f"unknown role {role!r}: want one of {', '.join(ROLE_GROUPS)}")
    group, _ = Group.objects.get_or_create(name=ROLE_GROUPS[role])
    user.groups.remove(*Group.objects.filter(name__in=ROLE_GROUPS.values()).exclude(id=group.id))
    user.groups.add(group)
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


class HyperSDKRole(BasePermission):
    """DRF's default: safe methods for viewers, everything for operators; others get 403."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False  # DRF answers 401 with the authenticate header
        if request.method in SAFE_METHODS:
            self.message = NO_ROLE
            return can_view(user)
        self.message = READ_ONLY if can_view(user) else NO_ROLE
        return can_operate(user)
