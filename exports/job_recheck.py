"""A stored job's options, validated again by the worker exactly as the API validated them.

The row may predate a rule or have been edited in the database (``conversion_timeout='abc'``):
the worker fails such a job with a one-line reason instead of crashing on it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from exports.job_spec import ENGINE_OPTIONS, JobSpecSerializer


class JobOptionsInvalid(ValueError):
    """A stored job's options no longer pass the submit-time validation; ``str(exc)`` is one line
    such as ``conversion_timeout refused: A valid integer is required.``"""


def revalidate_job_options(vm_path: str, output_path: str, options: Any) -> dict[str, Any]:
    """The engine options of a stored job, validated again exactly as at submit.

    The row may predate a rule or have been edited in the database; the worker runs nothing on
    the strength of it unchecked. Returns the validated ENGINE_OPTIONS (defaults filled in, but for those stored only when given);
    raises JobOptionsInvalid. The vCenter is the row's foreign key, checked by the database.
    """
    if not isinstance(options, dict):
        raise JobOptionsInvalid("options refused: not a JSON object")
    try:
        data = JobSpecSerializer().run_validation({**options, "vm_path": vm_path, "output_path": output_path})
    except serializers.ValidationError as exc:
        raise JobOptionsInvalid(_one_line(exc.detail)) from None
    return {name: data[name] for name in ENGINE_OPTIONS if name in data}


def _one_line(detail: Any) -> str:
    if not isinstance(detail, dict):
        detail = {"options": detail}
    parts = []
    for name, errors in detail.items():
        messages = errors if isinstance(errors, list) else [errors]
        # Whitespace collapsed: an echoed value must not break the line.
        parts.append(f"{name} refused: " + " ".join(" ".join(str(m).split()) for m in messages))
    return "; ".join(parts)
