"""The Manifest Converter tab: its form values as a job spec, submitted through the job service."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from dashboard.forms import FORM_OPTIONS, option_values
from exports import converters, jobs
from exports.models import Job
from exports.pipeline.options import OPTION

HYPER2KVM_OPTION = OPTION["hyper2kvm_path"]

# Where the job spec's fields show up in the converter form (validation errors go there).
FORM_FIELD_OF = {
    "vm_path": "vm_path",
    "output_path": "output_dir",
    "vcenter": "vcenter",
    **{option.name: option.form.name for option in FORM_OPTIONS if option.form is not None},
}


@dataclass(frozen=True)
class ConverterChoice:
    """What a job naming ``entered`` as its hyper2kvm path (empty: auto-detect) converts with
    here. ``runs``: the hyper2kvm it would run (None: qemu-img convert, ``qemu_img``, if any);
    ``refused``: why that path is not allowed, one line; ``configured``: the paths a job may
    name (the administrator's HYPERSDK_HYPER2KVM_PATHS)."""

    entered: str
    runs: str | None
    qemu_img: str | None
    refused: str = ""
    configured: tuple[str, ...] = ()

    @property
    def detected(self) -> bool:
        return not self.entered and self.runs is not None


def converter_for(entered: str) -> ConverterChoice:
    """The converter a job naming ``entered`` would run on this server, as the worker decides
    (converters.check_converter): the form says it as the path is typed."""
    entered = entered.strip()
    common = {"qemu_img": shutil.which("qemu-img"), "configured": tuple(converters.configured_converters())}
    if not entered:
        return ConverterChoice(entered="", runs=converters.detected_converter(), **common)
    if len(entered) > HYPER2KVM_OPTION.max_length or "\0" in entered:
        shown = entered[:80].replace("\0", "\ufffd")  # echoed on the page: no NUL, no essay
        return ConverterChoice(entered=shown, runs=None, refused="not a path", **common)
    try:
        allowed = converters.check_converter(entered)
    except converters.ConverterNotAllowed as exc:
        return ConverterChoice(entered=entered, runs=None, refused=str(exc), **common)
    if not os.access(allowed, os.X_OK) or not os.path.isfile(allowed):
        return ConverterChoice(
            entered=entered,
            runs=None,
            refused=f"{allowed} is not an executable file on this server",
            **common,
        )
    return ConverterChoice(entered=entered, runs=allowed, **common)


def job_spec(data: dict) -> dict:
    """The converter form's cleaned data as a job spec (JobSpecSerializer validates it)."""
    spec = {"vm_path": data["vm_path"], "manifest": True}
    if data["output_dir"] and data["output_dir"].strip():
        spec["output_path"] = data["output_dir"].strip()
    if data.get("vcenter"):
        spec["vcenter"] = data["vcenter"]
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
