"""What the schedules' and webhooks' admins share: JSON fields parsed as the API parses them, and
enable/disable actions that go through the app's service (never a bare ``queryset.update``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db import models

from hypersdk.lib.request_limits import BoundedJSONDecoder

# ``formfield_overrides`` of an admin with JSON fields: the same depth bound as the API's parser.
JSON_AS_THE_API_PARSES = {models.JSONField: {"decoder": BoundedJSONDecoder}}


def enable_disable_actions(
    set_enabled: Callable[[str, bool], Any], *, enable_label: str, disable_label: str
) -> list[Callable[..., None]]:
    """The ``enable`` and ``disable`` admin actions (those names: forms post them), shown as the
    two labels, calling ``set_enabled(object id, True/False)`` for each selected row."""

    @admin.action(description=enable_label)
    def enable(modeladmin, request, queryset) -> None:
        for obj in queryset:
            set_enabled(obj.id, True)

    @admin.action(description=disable_label)
    def disable(modeladmin, request, queryset) -> None:
        for obj in queryset:
            set_enabled(obj.id, False)

    return [enable, disable]
