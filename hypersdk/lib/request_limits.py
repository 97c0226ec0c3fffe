"""What the daemon accepts on the wire, before any view sees it: bounded JSON bodies of valid
Unicode (bounded in size and in nesting depth, standard JSON numbers only), and paths without
NUL characters. Each refusal is a clear 4xx, never a 500."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser, get_encoding

# No request body the API takes nests deeper than a few levels ({"jobs": [{"headers": {...}}]});
# deeper documents are refused before anything recursive (DRF's fields, json.dumps, the database
# driver) walks them.
MAX_JSON_DEPTH = 32


class BoundedJSONDecoder(json.JSONDecoder):
    """``json.loads(text, cls=BoundedJSONDecoder)``: standard JSON of at most MAX_JSON_DEPTH
    levels. Raises ``json.JSONDecodeError`` (a ValueError) for anything else, so every caller
    that handles a syntax error handles these too: 100,000 ``[`` (RecursionError in the C
    scanner), ``NaN``/``Infinity`` and numbers too large for a float (``1e999``), which no
    JSON column or client can hold."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parse_constant", _refuse_constant)
        kwargs.setdefault("parse_float", _finite_float)
        super().__init__(*args, **kwargs)

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        try:
            data = super().decode(s, *args, **kwargs)
        except RecursionError:
            raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", s, 0) from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", s, 0)
        return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def json_depth(data: Any) -> int:
    """How deep lists and objects nest in parsed JSON (a scalar is 0); iterative, so any depth
    is measured without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


class RequestBodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def body_too_large(limit: int) -> RequestBodyTooLarge:
    """413, naming the limit in bytes."""
    return RequestBodyTooLarge(
        f"request body too large: the limit is {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
    )


class BoundedJSONParser(JSONParser):
    """JSON of at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (checked here too, should a parser be
    handed the raw stream), and only text that can be stored: lone surrogates such as
    ``"\\ud800"`` decode as JSON but fail in the database and in the response."""

    def parse(self, stream, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = parser_context.get("request")
        if limit is not None and request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                raise body_too_large(limit)
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise body_too_large(limit)
        encoding = get_encoding(parser_context)
        try:
            text = codecs.decode(raw, encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(
                f"request body is not valid {encoding}: {exc.reason} at byte {exc.start}"
            ) from None
        try:
            data = json.loads(text, cls=BoundedJSONDecoder)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("request body holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
        return data


ADMIN_PREFIX = "/admin/"


class RejectNulMiddleware:
    """No job, schedule or webhook is named with a NUL, and PostgreSQL refuses one in a lookup
    with an error: a path holding one is answered 404 here, before any view looks it up."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return JsonResponse({"detail": "Not found: a path never holds a NUL character."}, status=404)
        # The admin's changelists turn query parameters (``?status__exact=``, ``?pk=``) straight
        # into ORM filters; our own views check theirs (hypersdk.lib.lookup_text).
        if request.path.startswith(ADMIN_PREFIX) and any(
            "\x00" in value for _, values in request.GET.lists() for value in values
        ):
            return JsonResponse({"detail": "A query parameter never holds a NUL character."}, status=400)
        return self.get_response(request)
