"""What every backend answers, local or remote: the same plain dicts as the API's JSON."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from exports.job_states import FINISHED_STATUSES as FINISHED_STATUSES
from exports.job_states import JOB_STATUSES as JOB_STATUSES

# Where a daemon's API is, when no ``--daemon-url`` names one; neither: the local services.
DAEMON_URL_ENV = "HYPERSDK_DAEMON_URL"

# `schedules list` and `webhooks list` show one page of this many (the API's default page);
# -all fetches every page, this many at a time (the API's largest page).
LIST_PAGE_SIZE = 50
ALL_PAGE_SIZE = 1000
# `vms list -all` fetches this many at a time: a page not read yet costs the daemon each VM's
# full record from vCenter (1,000 took a vCenter 5-7 s, near the remote CLI's wait for an
# answer); 200 keep a fresh page near a second.
VMS_ALL_PAGE_SIZE = 200


def page_count(count: int, page_size: int) -> int:
    """How many pages ``count`` rows fill (at least one, even when empty)."""
    return max(1, -(-count // page_size))


class JobsBackend(Protocol):
    is_local: bool
    where: str  # for humans: "daemon at http://host:8080", "local services (sqlite database)"

    def reading_answers(self) -> AbstractContextManager[None]:
        """Around a command's use of the answers: remote, an unreadable answer is one CLIError;
        local, nothing (a bug there shows as the traceback it is)."""
        ...

    def submit_job(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def query_jobs(
        self,
        *,
        status: str | None = None,
        vm: str | None = None,
        limit: int | None = None,
        id_prefix: str | None = None,
    ) -> dict[str, Any]: ...
    def get_job(self, job_id: str) -> dict[str, Any]: ...
    def job_logs(
        self, job_id: str, *, tail: int | None = None, since: int | None = None
    ) -> dict[str, Any]: ...
    def cancel_job(self, job_id: str) -> dict[str, Any]: ...
    def daemon_status(self) -> dict[str, Any]: ...
    def list_schedules(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]: ...
    def get_schedule(self, schedule_id: str) -> dict[str, Any]: ...
    def create_schedule(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def update_schedule(
        self, schedule_id: str, spec: dict[str, Any], *, partial: bool = True
    ) -> dict[str, Any]: ...
    def set_schedule_enabled(self, schedule_id: str, enabled: bool) -> dict[str, Any]: ...
    def trigger_schedule(self, schedule_id: str) -> dict[str, Any]: ...
    def delete_schedule(self, schedule_id: str) -> None: ...
    def list_webhooks(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]: ...
    def get_webhook(self, ref: str) -> dict[str, Any]: ...
    def add_webhook(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def delete_webhook(self, ref: str) -> None: ...
    def test_webhook(self, ref: str) -> dict[str, Any]: ...
    def webhook_deliveries(self, ref: str, *, limit: int = 50) -> list[dict[str, Any]]: ...
    def list_vms(
        self,
        *,
        vcenter: str | None = None,
        q: str = "",
        folder: str = "",
        power_state: str = "",
        guest_os: str = "",
        page: int | None = 1,
        page_size: int = LIST_PAGE_SIZE,
        refresh: bool = False,
    ) -> dict[str, Any]:
        """``{count, page, pages, results, vcenter, cached_at}``: one page of the inventory's
        VMs (``VMRecord.summary()`` each) matching every filter, or all (page None)."""
        ...

    def get_vm(self, ref: str, *, vcenter: str | None = None, refresh: bool = False) -> dict[str, Any]:
        """Every field of one VM (by inventory path or moref) and ``vcenter``: GET /vms/{ref}."""
        ...

    def preflight(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``{vm, findings, blocked}`` for a job spec: POST /vms/preflight."""
        ...
