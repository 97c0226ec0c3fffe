"""The Manifest Converter tab: its form values as a job spec, submitted through the job service."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from dashboard.forms import FORM_OPTIONS, option_values
from exports import converters, jobs
from exports.models import Job

# Where the job spec's fields show up in the converter form (validation errors go there).
FORM_FIELD_OF = {
    "vm_path": "vm_path",
    "output_path": "output_dir",
    **{option.name: option.form.name for option in FORM_OPTIONS if option.form is not None},
}


@dataclass(frozen=True)
class DetectedConverter:
    """What this server would convert with when the hyper2kvm path is left empty, and the
    paths a job may name instead (the administrator's HYPERSDK_HYPER2KVM_PATHS)."""

    hyper2kvm: str | None
    qemu_img: str | None
    configured: tuple[str, ...] = ()


def detect_converter() -> DetectedConverter:
    return DetectedConverter(
        hyper2kvm=converters.detected_converter(),
        qemu_img=shutil.which("qemu-img"),
        configured=tuple(converters.configured_converters()),
    )


def job_spec(data: dict) -> dict:
    """The converter form's cleaned data as a job spec (JobSpecSerializer validates it)."""
    spec = {"vm_path": data["vm_path"], "manifest": True}
    if data["output_dir"] and data["output_dir"].strip():
        spec["output_path"] = data["output_dir"].strip()
    return {**spec, **option_values(data)}


def submit(form) -> str | None:
    """Submit the form's job with origin "dashboard"; on refusal put the errors on the form."""
    result = jobs.submit_jobs([job_spec(form.cleaned_data)], origin=Job.Origin.DASHBOARD)
    if result.job_ids:
        return result.job_ids[0]
    for name, messages in result.errors[0]["errors"].items():
        field = FORM_FIELD_OF.get(name)
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(field, f"{name}: {message}" if field is None else str(message))
    return None
