"""The API's exception handler (REST_FRAMEWORK's EXCEPTION_HANDLER): domain errors and Django's
body limit become the API's 4xx answers here, once, instead of in every view."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ValidationError

from hypersdk.lib.errors import ConflictError, InvalidInput, NotFoundError
from hypersdk.lib.request_limits import body_too_large

if TYPE_CHECKING:
    from rest_framework.response import Response

# Line breaks and terminal controls: a 502's detail is one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class BadGateway(APIException):
    """502: the daemon could not get the answer from the vCenter it asked (unreachable, not
    trusted, log-in refused). The detail is the connection error's one line, never a secret."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "vcenter_unreachable"


class Conflict(APIException):
    """409: the thing exists but cannot do this now (e.g. a schedule whose template no longer
    validates cannot be triggered)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def as_api_exception(exc: Exception) -> Exception:
    """``exc`` as DRF answers it: NotFoundError → 404, ConflictError → 409, InvalidInput → 400
    ``{field: [message]}`` (each with ``str(exc)`` as its detail), RequestDataTooBig → 413,
    VCenterConnectionError → 502 (its one line, control characters as spaces); anything else
    unchanged."""
    from exports.pipeline.errors import VCenterConnectionError  # the pipeline loads on demand

    if isinstance(exc, VCenterConnectionError):
        return BadGateway(_CONTROL.sub(" ", str(exc)).strip() or "the vCenter could not be reached")
    if isinstance(exc, NotFoundError):
        return NotFound(str(exc))
    if isinstance(exc, ConflictError):
        return Conflict(str(exc))
    if isinstance(exc, InvalidInput):
        return ValidationError({exc.field: [exc.message]})
    if isinstance(exc, RequestDataTooBig):
        # DRF reads ``request.body`` for JSON, which raises this: the API's 413, not Django's 400.
        return body_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return exc


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, after ``as_api_exception``."""
    from rest_framework.views import exception_handler  # it imports the parsers named in settings

    return exception_handler(as_api_exception(exc), context)
