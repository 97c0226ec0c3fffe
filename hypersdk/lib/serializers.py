"""What every API request body is held to, whichever app reads it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from hypersdk.lib.lookup_text import can_match, shown


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, instead of dropping them silently: a typo in a
    client's request must not become a default. A 400 names each unknown field."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class LookupSlugRelatedField(serializers.SlugRelatedField):
    """A ``SlugRelatedField`` whose value is checked before the lookup: one no row can hold (a
    NUL, which PostgreSQL refuses with an error) is "does not exist", as any unknown name is."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and not can_match(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=shown(data))
        return super().to_internal_value(data)
