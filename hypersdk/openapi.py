"""The OpenAPI schema documents the errors every operation can answer, not only its success:
clients (and schemathesis in the suite) may then rely on every status code being listed."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR = inline_serializer("Error", {"detail": serializers.CharField()})
# A 400 is either {"detail": ...} or field errors {"field": ["message", ...]}.
FIELD_ERRORS = inline_serializer("FieldErrors", {"detail": serializers.CharField(required=False)})

DESCRIPTIONS = {
    "400": "invalid input: field errors, or a detail",
    "401": "no or an invalid token",
    "403": "the account's role does not allow this",
    "404": "no such object",
    "413": "request body too large",
    "415": "the body must be application/json",
}


class HyperSDKAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                serializer = FIELD_ERRORS if code == "400" else ERROR
                response = self._get_response_for_code(serializer, code, direction=direction)
                response["description"] = DESCRIPTIONS[code]
                responses[code] = response
        return responses

    def _error_codes(self) -> list[str]:
        codes = ["400"]  # a bad query parameter or body
        if not any(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            codes += ["401", "403"]
        # A missing object, or a page past the end of a list.
        if "{" in self.path or (self._is_list_view() and self._get_paginator()):
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        return codes
