"""Rows the tests need, made one way: people with a role and their clients, jobs, schedules,
webhooks; and VMs as the inventory records them (``disk_record``, ``vm_record``). The shared persona fixtures (``operator``, ``viewer``, ``no_role_user`` and their
``*_api`` / ``*_browser`` clients) are in ``tests/conftest.py`` and built from these."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from api_tokens.service import issue_token
from exports.models import Job
from hypersdk.lib.permissions import grant_role
from inventory.records import DiskRecord, VMRecord
from schedules.models import Schedule
from webhooks import service as webhooks
from webhooks.models import Webhook

APP01 = "/dc/vm/prod/app01"
GIB = 1 << 30


def disk_record(label: str = "Hard disk 1", **changes: Any) -> DiskRecord:
    """A thin 8 GiB disk on pvscsi 0:0 of LocalDS_0 (2 GiB allocated), with ``changes``."""
    base = DiskRecord(
        label=label,
        capacity_bytes=8 * GIB,
        provisioning="thin",
        controller="pvscsi",
        bus="scsi",
        bus_number=0,
        unit_number=0,
        datastore="LocalDS_0",
        datastore_accessible=True,
        mode="persistent",
        rdm=None,
        file_name="[LocalDS_0] web01/web01.vmdk",
        allocated_bytes=2 * GIB,
    )
    return replace(base, **changes)


def vm_record(**changes: Any) -> VMRecord:
    """A powered-off BIOS VM /dc/vm/prod/web01 (Ubuntu, 2 vCPUs, 2 GiB, one ``disk_record``),
    with ``changes``."""
    base = VMRecord(
        moref="vm-42",
        name="web01",
        path="/dc/vm/prod/web01",
        datacenter="dc",
        folder="/dc/vm/prod",
        power_state="off",
        guest_id="ubuntu64Guest",
        guest_full_name="Ubuntu Linux (64-bit)",
        guest_detected="",
        cpus=2,
        cores_per_socket=1,
        memory_mb=2048,
        firmware="bios",
        secure_boot=False,
        template=False,
        encrypted=False,
        cbt_enabled=False,
        tools_status="not-running",
        snapshot_count=0,
        current_snapshot="",
        estimated_export_bytes=GIB,
        disks=(disk_record(),),
    )
    return replace(base, **changes)


def make_user(
    username: str, role: str | None = None, *, password: str | None = None, superuser: bool = False
):
    """A user with ``role`` ("operator", "viewer" or None for no role); the password defaults
    to ``<username>-pass``."""
    password = password if password is not None else f"{username}-pass"
    users = get_user_model().objects
    if superuser:
        return users.create_superuser(username, f"{username}@example.com", password)
    user = users.create_user(username, password=password)
    if role is not None:
        grant_role(user, role)
    return user


def api_client(user) -> APIClient:
    """A REST client sending a fresh API token of ``user``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


def browser(user) -> Client:
    """A dashboard client with ``user`` logged in (a session, as after the log-in form)."""
    client = Client()
    client.force_login(user)
    return client


def make_job(vm_path: str = APP01, output_path: str | None = None, **fields: Any) -> Job:
    """A Job row as submit would leave it (pending unless ``status`` says otherwise); the
    output defaults to ``/exports/<vm name>``."""
    if output_path is None:
        output_path = f"/exports/{vm_path.rsplit('/', 1)[-1]}"
    return Job.objects.create(vm_path=vm_path, output_path=str(output_path), **fields)


def make_schedule(name: str = "nightly", cron: str = "0 2 * * *", **fields: Any) -> Schedule:
    """A Schedule row, written directly (no validation): ``job_template`` defaults to empty."""
    fields.setdefault("job_template", {})
    return Schedule.objects.create(name=name, cron=cron, **fields)


def make_webhook(url: str, events: list[str] | None = None, **options: Any) -> tuple[Webhook, str]:
    """A webhook added through the service, as every door adds one; its secret, shown once."""
    return webhooks.add_webhook(url, events, **options)


def schedule_admin_form(**fields: str) -> dict[str, str]:
    """The POST body of the admin's schedule add/change form: a valid nightly schedule of
    web01, no run inlines; ``fields`` override it."""
    return {
        "name": "nightly",
        "cron": "0 2 * * *",
        "timezone": "UTC",
        "job_template": '{"vm_path": "/dc/vm/prod/web01"}',
        "enabled": "on",
        "overlap": "skip",
        "retention": "",
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
        **fields,
    }
