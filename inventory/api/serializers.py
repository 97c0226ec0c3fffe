"""How the inventory looks on the wire: serializers derived from the records' dataclasses
(``inventory.records``), so a field added there is in the API, its schema and the CLI at once.

Output only, except ``VMListQuery``: the list's query parameters, read the same way by the API
and by ``hyperctl vms`` on the local services.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any

from rest_framework import serializers

from exports.api.pagination import JobPagination
from exports.limits import MAX_PAGE
from exports.models import VCenter
from hypersdk.lib.serializers import LookupSlugRelatedField
from inventory import service
from inventory.findings import LEVELS, Finding
from inventory.records import CONNECTION_STATES, POWER_STATES, DiskRecord, DriveRecord, NicRecord, VMRecord

# What a field's name says of its unit, for its description in the schema.
_UNITS = {"_bytes": "bytes", "_mb": "MiB (2**20 bytes)"}
# Fields whose values are one of a few: documented as an enum.
_CHOICES = {"power_state": POWER_STATES, "connection_state": CONNECTION_STATES, "level": LEVELS}
# The device lists of a VMRecord, left out of a list row (VMRecord.summary).
DEVICE_LISTS = ("disks", "nics", "drives")
# Optional filters: at most this long (a name or path never is longer).
MAX_FILTER_LENGTH = 1024


def field_help(record: type, name: str) -> str:
    """What the record's docstring says of the field ``name`` (the sentences naming it as
    ````name````), and its unit; "" if neither."""
    text = " ".join((record.__doc__ or "").split())
    said = [sentence.rstrip(".") for sentence in re.split(r"(?<=\.) ", text) if f"``{name}``" in sentence]
    unit = next((unit for suffix, unit in _UNITS.items() if name.endswith(suffix)), None)
    return "; ".join([*said, *([f"in {unit}"] if unit else [])])


def _field_for(
    name: str, hint: Any, help_text: str, nested: dict[type, type[serializers.Serializer]]
) -> serializers.Field:
    """The DRF field for one dataclass field: ``str``, ``int``, ``bool``, ``X | None`` (nullable)
    or ``tuple[Record, ...]`` (a list of the record's serializer)."""
    kwargs: dict[str, Any] = {"help_text": help_text} if help_text else {}
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (hint,) = [arg for arg in args if arg is not type(None)]
        kwargs["allow_null"] = True
    if typing.get_origin(hint) is tuple:
        return nested[args[0]](many=True, **kwargs)
    if name in _CHOICES:
        return serializers.ChoiceField(choices=_CHOICES[name], **kwargs)
    if hint is bool:
        return serializers.BooleanField(**kwargs)
    if hint is int:
        return serializers.IntegerField(**kwargs)
    if hint is str:
        return serializers.CharField(**kwargs)
    raise TypeError(f"no API field for {name}: {hint!r}")


def record_serializer(
    record: type,
    name: str,
    *,
    exclude: tuple[str, ...] = (),
    extra: dict[str, serializers.Field] | None = None,
    nested: dict[type, type[serializers.Serializer]] | None = None,
) -> type[serializers.Serializer]:
    """A read-only serializer named ``name`` with one field per field of the ``record``
    dataclass (less ``exclude``, plus ``extra``), described by the dataclass's docstring."""
    hints = typing.get_type_hints(record)
    fields: dict[str, Any] = {
        f.name: _field_for(f.name, hints[f.name], field_help(record, f.name), nested or {})
        for f in dataclasses.fields(record)
        if f.name not in exclude
    }
    fields.update(extra or {})
    fields["__doc__"] = record.__doc__
    fields["__module__"] = __name__
    return type(name, (serializers.Serializer,), fields)


DiskSerializer = record_serializer(DiskRecord, "VMDisk")
NicSerializer = record_serializer(NicRecord, "VMNic")
DriveSerializer = record_serializer(DriveRecord, "VMDrive")
FindingSerializer = record_serializer(Finding, "Finding")

_VCENTER = serializers.CharField(
    allow_null=True, help_text="the vCenter's name in the daemon; null: the daemon's default (GOVC_*)"
)

VMSerializer = record_serializer(
    VMRecord,
    "VM",
    extra={"vcenter": _VCENTER},
    nested={DiskRecord: DiskSerializer, NicRecord: NicSerializer, DriveRecord: DriveSerializer},
)
VMSummarySerializer = record_serializer(
    VMRecord,
    "VMSummary",
    exclude=DEVICE_LISTS,
    extra={
        "disk_count": serializers.IntegerField(help_text="how many virtual disks"),
        "nic_count": serializers.IntegerField(help_text="how many network adapters"),
    },
)


class VMPageSerializer(serializers.Serializer):
    """One page of the inventory, paged as ``/jobs/query``, with where and when it was read."""

    count = serializers.IntegerField(help_text="VMs matching every filter, on all pages")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = VMSummarySerializer(many=True)
    vcenter = serializers.CharField(
        allow_null=True, help_text="the vCenter's name in the daemon; null: the daemon's default (GOVC_*)"
    )
    cached_at = serializers.CharField(help_text="when the inventory was read from vCenter (ISO 8601, UTC)")


class PreflightReportSerializer(serializers.Serializer):
    """What a job would meet: findings (blockers refuse the job), and the VM they are about."""

    vm = VMSummarySerializer(allow_null=True, help_text="null when the VM was not found")
    findings = FindingSerializer(many=True)
    blocked = serializers.BooleanField(help_text="a finding is a blocker: the job would be refused")


def vm_answer(record: VMRecord, vcenter: str | None) -> dict[str, Any]:
    """``GET /vms/{ref}``'s body: every field of the record, and the vCenter it is on."""
    return {**record.as_dict(), "vcenter": vcenter or None}


class VMListQuery(serializers.Serializer):
    """``GET /vms``'s query parameters (and ``hyperctl vms list``'s flags, locally): each bad
    one a field error. ``vcenter`` is checked as ``/jobs/submit`` checks it."""

    vcenter = LookupSlugRelatedField(
        slug_field="name", queryset=VCenter.objects.all(), required=False, allow_null=True, default=None
    )
    q = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=MAX_FILTER_LENGTH, trim_whitespace=False
    )
    folder = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=MAX_FILTER_LENGTH, trim_whitespace=False
    )
    power_state = serializers.ChoiceField(choices=POWER_STATES, required=False, default="")
    guest_os = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=MAX_FILTER_LENGTH, trim_whitespace=False
    )
    refresh = serializers.BooleanField(required=False, default=False)

    def validated_filters(self) -> dict[str, Any]:
        """``inventory.service.list_vms``'s keyword arguments (but the page), once valid."""
        data = dict(self.validated_data)
        data["vcenter"] = data["vcenter"].name if data["vcenter"] is not None else None
        return data


class VMDetailQuery(VMListQuery):
    """``GET /vms/{ref}``'s query parameters: the vCenter, and whether to read it again."""

    class Meta:
        fields = ("vcenter", "refresh")

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: field for name, field in super().get_fields().items() if name in self.Meta.fields}


class VMPagination(JobPagination):
    """The inventory's pages, with the limits and messages of every other list: the service
    pages (it holds the list in its cache), this reads ``page``/``page_size`` and links them."""

    page_size = service.DEFAULT_PAGE_SIZE
    max_page_size = service.MAX_PAGE_SIZE

    def page_number(self, request) -> int:
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 7 and 1 <= int(raw) <= MAX_PAGE):
            raise serializers.ValidationError({"page": [f"must be an integer from 1 to {MAX_PAGE}"]})
        return int(raw)
