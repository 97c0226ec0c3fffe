"""The services in this process, on the daemon's database; its workers run the jobs.

Each method imports the service and serializer it uses: a CLI process runs one command, and
``schedules list`` need not import the job pipeline's or the webhooks' (a few hundred ms)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connection

from cli.backends.errors import CLIError, error_message, no_such_page, one_line
from cli.backends.protocol import DAEMON_URL_ENV, LIST_PAGE_SIZE, page_count
from exports.pipeline.errors import VCenterConnectionError
from hypersdk.lib.errors import DomainError

if TYPE_CHECKING:
    from schedules.spec import ScheduleSpecSerializer


def _plain(data: Any) -> Any:
    """Exactly what the API would have sent: the serializer output through JSON and back."""
    from rest_framework.renderers import JSONRenderer

    return json.loads(JSONRenderer().render(data))


class LocalBackend:
    """The job service in this process, on the daemon's database; its workers run the jobs."""

    is_local = True

    def __init__(self) -> None:
        self.where = f"local services ({connection.vendor} database)"

    def reading_answers(self) -> AbstractContextManager[None]:
        return nullcontext()  # our own services' answers: a bug in reading them is a traceback

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except DomainError as exc:  # not found, conflict, invalid input: the service's one line
            raise CLIError(str(exc)) from None
        except VCenterConnectionError as exc:  # the inventory's vCenter: its one line, no secret
            raise CLIError(one_line(str(exc))) from None
        except DatabaseError as exc:
            raise CLIError(
                f"the local database cannot be used ({one_line(str(exc))}): run this on the daemon's machine "
                f"with its settings, or set {DAEMON_URL_ENV}"
            ) from None

    def submit_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        from exports import jobs
        from exports.models import Job

        with self._errors():
            result = jobs.submit_jobs([spec], origin=Job.Origin.CLI)
        if not result.accepted:
            raise CLIError(error_message(_plain({**result.errors[0]["errors"], **result.as_dict()})))
        return _plain(result.as_dict())

    def query_jobs(
        self,
        *,
        status: str | None = None,
        vm: str | None = None,
        limit: int | None = None,
        id_prefix: str | None = None,
    ) -> dict[str, Any]:
        from exports import jobs
        from exports.api.serializers import JobSerializer

        with self._errors():
            found = jobs.query_jobs(status=status, vm=vm, id_prefix=id_prefix)
            count = found.count()
            rows = found[:limit] if limit else found
            return {"count": count, "results": _plain(JobSerializer(rows, many=True).data)}

    def get_job(self, job_id: str) -> dict[str, Any]:
        from exports import jobs
        from exports.api.serializers import JobSerializer

        with self._errors():
            return _plain(JobSerializer(jobs.get_job(job_id)).data)

    def job_logs(self, job_id: str, *, tail: int | None = None, since: int | None = None) -> dict[str, Any]:
        from exports import jobs
        from exports.api.serializers import JobLogSerializer

        with self._errors():
            entries = jobs.job_logs(job_id, tail=tail, since=since)
            return {"job_id": job_id, "logs": _plain(JobLogSerializer(entries, many=True).data)}

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        from exports import jobs

        with self._errors():
            job = jobs.cancel_job(job_id)
        return {"job_id": job.id, "status": job.status, "cancel_requested": job.cancel_requested}

    def daemon_status(self) -> dict[str, Any]:
        from exports import daemon_status

        with self._errors():
            # The daemon's uptime from its record, as GET /status reads it; None if none runs here.
            return _plain(daemon_status.daemon_status(serving=False))

    def list_schedules(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]:
        """``{count, page, pages, results}``: one page of schedules by name, or all (page None)."""
        from schedules import service as schedules
        from schedules.api.serializers import ScheduleSerializer

        with self._errors():
            found = schedules.list_schedules()
            count, rows, page, pages = self._slice(found, page, page_size)
            return {
                "count": count,
                "page": page,
                "pages": pages,
                "results": _plain(ScheduleSerializer(rows, many=True).data),
            }

    @staticmethod
    def _slice(found, page: int | None, page_size: int) -> tuple[int, Any, int, int]:
        count = found.count()
        if page is None:
            return count, found, 1, 1
        pages = page_count(count, page_size)
        if page > pages and not (page == 1 and count == 0):
            raise no_such_page(page)
        return count, found[(page - 1) * page_size : page * page_size], page, pages

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        from schedules import service as schedules
        from schedules.api.serializers import ScheduleSerializer

        with self._errors():
            return _plain(ScheduleSerializer(schedules.get_schedule(schedule_id)).data)

    def create_schedule(self, spec: dict[str, Any]) -> dict[str, Any]:
        from schedules import service as schedules
        from schedules.api.serializers import ScheduleSerializer
        from schedules.spec import ScheduleSpecSerializer

        with self._errors():
            data = _valid_schedule(ScheduleSpecSerializer(data=spec))
            return _plain(ScheduleSerializer(schedules.create_schedule(data)).data)

    def update_schedule(
        self, schedule_id: str, spec: dict[str, Any], *, partial: bool = True
    ) -> dict[str, Any]:
        from schedules import service as schedules
        from schedules.api.serializers import ScheduleSerializer
        from schedules.spec import ScheduleSpecSerializer

        with self._errors():
            schedule = schedules.get_schedule(schedule_id)
            data = _valid_schedule(ScheduleSpecSerializer(schedule, data=spec, partial=partial))
            return _plain(ScheduleSerializer(schedules.update_schedule(schedule, data)).data)

    def set_schedule_enabled(self, schedule_id: str, enabled: bool) -> dict[str, Any]:
        from schedules import service as schedules
        from schedules.api.serializers import ScheduleSerializer

        with self._errors():
            return _plain(ScheduleSerializer(schedules.set_enabled(schedule_id, enabled)).data)

    def trigger_schedule(self, schedule_id: str) -> dict[str, Any]:
        from schedules import service as schedules

        with self._errors():
            job = schedules.trigger(schedule_id)
        return {"schedule_id": schedule_id, "job_id": job.id}

    def delete_schedule(self, schedule_id: str) -> None:
        from schedules import service as schedules

        with self._errors():
            schedules.delete_schedule(schedule_id)

    def list_webhooks(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]:
        """``{count, page, pages, results}``: one page of webhooks with their indexes, or all."""
        from webhooks import service as webhooks
        from webhooks.api.serializers import WebhookSerializer

        with self._errors():
            count, rows, page, pages = self._slice(webhooks.ordered_webhooks(), page, page_size)
            start = (page - 1) * page_size
            numbered = webhooks.with_indexes(rows, start=start)
            return {
                "count": count,
                "page": page,
                "pages": pages,
                "results": _plain(WebhookSerializer(numbered, many=True).data),
            }

    def get_webhook(self, ref: str) -> dict[str, Any]:
        from webhooks import service as webhooks
        from webhooks.api.serializers import WebhookSerializer

        with self._errors():
            return _plain(WebhookSerializer(webhooks.get_webhook(ref)).data)

    def add_webhook(self, spec: dict[str, Any]) -> dict[str, Any]:
        """As POST /webhooks answers: the webhook and its signing secret, shown this once."""
        from webhooks import service as webhooks
        from webhooks.api.serializers import WebhookSerializer, WebhookSpecSerializer

        with self._errors():
            checked = WebhookSpecSerializer(data=spec)
            if not checked.is_valid():
                raise CLIError(error_message(_plain(checked.errors)))
            webhook, secret = webhooks.add_webhook(**checked.validated_data)
            return _plain({**WebhookSerializer(webhook).data, **webhooks.as_given(webhook), "secret": secret})

    def delete_webhook(self, ref: str) -> None:
        from webhooks import service as webhooks

        with self._errors():
            webhooks.delete_webhook(ref)

    def test_webhook(self, ref: str) -> dict[str, Any]:
        from webhooks import service as webhooks

        with self._errors():
            return _plain(webhooks.test_webhook(ref).as_dict())

    def webhook_deliveries(self, ref: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, at most ``limit``: the first page of GET /webhooks/{ref}/deliveries."""
        from webhooks import service as webhooks
        from webhooks.api.serializers import WebhookDeliverySerializer

        with self._errors():
            found = webhooks.deliveries(ref)[:limit]
            return _plain(WebhookDeliverySerializer(found, many=True).data)

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
        """As GET /vms answers, with the flags checked as it checks its parameters; page None:
        every page (read from vCenter once, then from the cache)."""
        from inventory import service
        from inventory.api.serializers import VMListQuery

        given = {
            "vcenter": vcenter,
            "q": q,
            "folder": folder,
            "power_state": power_state,
            "guest_os": guest_os,
        }
        with self._errors():
            # As the remote backend sends them: only the filters given.
            query = VMListQuery(data={**{k: v for k, v in given.items() if v}, "refresh": refresh})
            if not query.is_valid():
                raise CLIError(error_message(_plain(query.errors)))
            filters = query.validated_filters()
            if page is None:
                found = service.list_vms(**filters, page=1, page_size=service.MAX_PAGE_SIZE)
                records = list(found.results)
                filters["refresh"] = False  # the next pages from the cache the first one filled
                for number in range(2, page_count(found.count, service.MAX_PAGE_SIZE) + 1):
                    records += service.list_vms(
                        **filters, page=number, page_size=service.MAX_PAGE_SIZE
                    ).results
                number, pages = 1, 1
            else:
                found = service.list_vms(**filters, page=page, page_size=page_size)
                records, number, pages = found.results, page, page_count(found.count, page_size)
                if page > pages:
                    raise no_such_page(page)
        return {
            "count": found.count,
            "page": number,
            "pages": pages,
            "results": _plain([record.summary() for record in records]),
            "vcenter": found.vcenter or None,
            "cached_at": found.cached_at,
        }

    def get_vm(self, ref: str, *, vcenter: str | None = None, refresh: bool = False) -> dict[str, Any]:
        from inventory import service
        from inventory.api.serializers import VMDetailQuery, vm_answer

        with self._errors():
            query = VMDetailQuery(data={"refresh": refresh, **({"vcenter": vcenter} if vcenter else {})})
            if not query.is_valid():
                raise CLIError(error_message(_plain(query.errors)))
            filters = query.validated_filters()
            record = service.get_vm(ref, vcenter=filters["vcenter"], refresh=refresh)
        return _plain(vm_answer(record, filters["vcenter"]))

    def preflight(self, spec: dict[str, Any]) -> dict[str, Any]:
        from rest_framework.exceptions import ValidationError

        from inventory import preflight

        with self._errors():
            try:
                report = preflight.preflight_spec(spec, origin="cli")
            except ValidationError as exc:  # the job spec's field errors, as the API's 400 reads
                raise CLIError(error_message(_plain(exc.detail))) from None
        return _plain(report.as_dict())


def _valid_schedule(spec: ScheduleSpecSerializer) -> dict[str, Any]:
    """The validated data, or the one line the API's 400 would have read as."""
    if not spec.is_valid():
        raise CLIError(error_message(_plain(spec.errors)))
    return spec.validated_data
