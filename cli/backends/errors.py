"""How a backend fails: a ``CLIError`` (one line for stderr and an exit status), and the API's
error bodies read as that one line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# Control characters (ESC starts a terminal's escape sequences) and line breaks, C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

# The summary fields of a submit answer, beside the field errors of a rejected job.
_SUBMIT_SUMMARY = {"job_ids", "accepted", "rejected", "errors"}


class CLIError(Exception):
    """What the user reads as ``error: <message>``, and the exit status that goes with it."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CLIError):
    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


def one_line(text: str) -> str:
    """A server's text as one printable line: control characters and line breaks become a space."""
    return _CONTROL.sub(" ", text).strip()


def error_message(body: Any) -> str:
    """An API error body on one line: its ``detail``, else its field errors (control characters
    and line breaks of the server's text shown as spaces)."""
    return one_line(_error_text(body))


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        if "detail" in body:
            return str(body["detail"])
        fields = {name: value for name, value in body.items() if name not in _SUBMIT_SUMMARY}
        if not fields and body.get("errors"):  # a rejected batch: [{"index": i, "errors": {...}}]
            return "; ".join(f"job {item['index']}: {_error_text(item['errors'])}" for item in body["errors"])
        return "; ".join(_field_errors(fields)) or "the daemon refused the request"
    if isinstance(body, list):
        return "; ".join(str(item) for item in body)
    return str(body)


def _field_errors(errors: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for name, value in errors.items():
        label = prefix.rstrip(".") if name == "non_field_errors" else f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _field_errors(value, f"{label}.")
            continue
        messages = value if isinstance(value, list) else [value]
        text = " ".join(str(message) for message in messages if not isinstance(message, dict))
        # Some messages already name their field ("output_path must be inside ...").
        yield f"{label}: {text}" if label and not text.startswith(label) else text


def no_such_page(page: int) -> CLIError:
    return CLIError(f"there is no page {page}: That page contains no results")
