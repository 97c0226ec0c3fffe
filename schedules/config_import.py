"""Import `schedules:` and `webhooks:` from a HyperSDK v0.1.x YAML config.

Accepted schedule keys: `name`, `cron` (or `schedule`), `vm` (or `vm_path`), `output` (or
`output_path`, `output_dir`), `timezone`, `enabled`, `overlap`, `retention`, `vcenter`, and every
export option by its job spec name (`format`, `compress`, `manifest`, `manifest_target`,
`convert`, `verify`, `power_off`, `parallel`, ...: exports/pipeline/options.py).
Webhook keys: `url`, `events`, `headers`, `timeout`, `retry`, `enabled`.
Importing twice changes nothing: a schedule whose name exists is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.apps import apps
from django.db import transaction

from exports.pipeline.options import OPTIONS
from schedules import service
from schedules.models import Schedule
from schedules.spec import ScheduleSpecSerializer

# Old spellings of the fields; an export option's own (exports.pipeline.options) come from its
# declaration. Every other key is the schedule spec's field of that name.
RENAMES = {
    "schedule": "cron",
    "vm": "vm_path",
    "output": "output_path",
    "output_dir": "output_path",
    **{key: option.name for option in OPTIONS for key in option.config_keys},
}
WEBHOOK_KEYS = {"url", "events", "headers", "timeout", "retry", "enabled", "format"}


class ConfigError(ValueError):
    pass


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def load(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping with schedules: and webhooks:")
    for key in ("schedules", "webhooks"):
        if document.get(key) is not None and not isinstance(document[key], list):
            raise ConfigError(f"{path}: {key} must be a list")
    return document


def import_config(path: Path) -> ImportReport:
    document = load(path)
    report = ImportReport()
    for index, entry in enumerate(document.get("schedules") or []):
        _import_schedule(index, entry, report)
    for index, entry in enumerate(document.get("webhooks") or []):
        _import_webhook(index, entry, report)
    return report


def _import_schedule(index: int, entry: Any, report: ImportReport) -> None:
    if not isinstance(entry, dict):
        report.failed.append(f"schedules[{index}]: not a mapping")
        return
    name = str(entry.get("name", f"schedules[{index}]"))
    # Two spellings of one field (``cron:`` and ``schedule:``): which one was meant is unknowable.
    spellings: dict[str, list[str]] = {}
    for key in entry:
        spellings.setdefault(RENAMES.get(key, key), []).append(str(key))
    clash = next((keys for keys in spellings.values() if len(keys) > 1), None)
    if clash:
        report.failed.append(f"schedule {name}: give only one of {' and '.join(sorted(clash))}")
        return
    data = {RENAMES.get(key, key): value for key, value in entry.items()}
    if Schedule.objects.filter(name=name).exists():
        report.skipped.append(f"schedule {name}: exists")
        return
    spec = ScheduleSpecSerializer(data=data)
    if not spec.is_valid():
        problems = "; ".join(
            f"{key}: {' '.join(str(m) for m in messages)}" for key, messages in spec.errors.items()
        )
        report.failed.append(f"schedule {name}: {problems}")
        return
    with transaction.atomic():
        schedule = service.create_schedule(spec.validated_data)
    report.created.append(f"schedule {schedule.name} ({schedule.id}, {schedule.cron})")


def _shown(entry: dict) -> str:
    """The entry's webhook URL as every door shows it: credentials, query and a chat service's
    secret path masked (webhooks.models.mask_target), under the format it names or implies."""
    from webhooks.formats import FORMATS, infer
    from webhooks.models import mask_target

    url = str(entry["url"])
    named = entry.get("format")
    return mask_target(url, named if named in FORMATS else infer(url))


def _import_webhook(index: int, entry: Any, report: ImportReport) -> None:
    if not isinstance(entry, dict) or not entry.get("url"):
        report.failed.append(f"webhooks[{index}]: a mapping with a url is required")
        return
    unknown = sorted(set(entry) - WEBHOOK_KEYS)
    if unknown:
        report.failed.append(f"webhook {_shown(entry)}: unknown keys {', '.join(unknown)}")
        return
    try:
        apps.get_model("webhooks", "Webhook")
    except LookupError:
        report.failed.append(
            f"webhook {_shown(entry)}: not imported — this HyperSDK has no webhooks yet; "
            "import the file again once it does (schedules already imported are skipped)"
        )
        return
    from webhooks import service as webhook_service

    try:
        created, label = webhook_service.import_webhook(entry)
    except webhook_service.InvalidWebhook as exc:
        report.failed.append(f"webhook {_shown(entry)}: {exc}")
        return
    (report.created if created else report.skipped).append(label)
