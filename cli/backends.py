"""Where the CLIs find jobs and schedules: the local services in-process, or a daemon over its
REST API.

Both backends return the same plain dicts as the API's JSON, so nothing above them knows which
one answered. Every failure is a ``CLIError``: one line for stderr and an exit status.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from django.db import DatabaseError, connection

import hypersdk
from exports import daemon_status, jobs
from exports.api.serializers import JobLogSerializer, JobSerializer
from exports.models import Job
from hypersdk.env import ConfigError, env_str
from hypersdk.errors import DomainError
from schedules import service as schedules
from schedules.api.serializers import ScheduleSerializer
from schedules.spec import ScheduleSpecSerializer
from webhooks import service as webhooks
from webhooks.api.serializers import (
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookSpecSerializer,
)

DAEMON_URL_ENV = "HYPERSDK_DAEMON_URL"
API_TOKEN_ENV = "HYPERSDK_API_TOKEN"
TIMEOUT_SECONDS = 10.0
JOB_STATUSES = tuple(Job.Status.values)
FINISHED_STATUSES = tuple(str(status) for status in Job.FINISHED)
TOKEN_REFUSED = f"the daemon refused the API token (set {API_TOKEN_ENV})"

# `schedules list` and `webhooks list` show one page of this many (the API's default page);
# -all fetches every page, this many at a time (the API's largest page).
LIST_PAGE_SIZE = 50
ALL_PAGE_SIZE = 1000

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


class JobsBackend(Protocol):
    is_local: bool
    where: str  # for humans: "daemon at http://host:8080", "local services (sqlite database)"

    def submit_job(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def query_jobs(
        self, *, status: str | None = None, vm: str | None = None, limit: int | None = None
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


def open_backend(daemon_url: str | None = None, token_file: str | None = None) -> JobsBackend:
    """The daemon at ``--daemon-url`` or $HYPERSDK_DAEMON_URL if given, else the local services."""
    url = (daemon_url or os.environ.get(DAEMON_URL_ENV, "")).strip()
    if not url:
        return LocalBackend()
    return RemoteBackend(url, read_token(token_file))


def read_token(token_file: str | None) -> str:
    """From ``--token-file``, else $HYPERSDK_API_TOKEN (or the file named by $HYPERSDK_API_TOKEN_FILE)."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise CLIError(f"cannot read token file {token_file}: {exc.strerror}") from None
        if not token:
            raise CLIError(f"token file {token_file} is empty")
        return token
    try:
        return env_str(API_TOKEN_ENV).strip()
    except ConfigError as exc:
        raise CLIError(str(exc)) from None


def error_message(body: Any) -> str:
    """An API error body on one line: its ``detail``, else its field errors."""
    if isinstance(body, dict):
        if "detail" in body:
            return str(body["detail"])
        fields = {name: value for name, value in body.items() if name not in _SUBMIT_SUMMARY}
        if not fields and body.get("errors"):  # a rejected batch: [{"index": i, "errors": {...}}]
            return "; ".join(
                f"job {item['index']}: {error_message(item['errors'])}" for item in body["errors"]
            )
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


def _pages(count: int, page_size: int) -> int:
    return max(1, -(-count // page_size))


def no_such_page(page: int) -> CLIError:
    return CLIError(f"there is no page {page}: That page contains no results")


def _plain(data: Any) -> Any:
    """Exactly what the API would have sent: the serializer output through JSON and back."""
    from rest_framework.renderers import JSONRenderer

    return json.loads(JSONRenderer().render(data))


class LocalBackend:
    """The job service in this process, on the daemon's database; its workers run the jobs."""

    is_local = True

    def __init__(self) -> None:
        self.where = f"local services ({connection.vendor} database)"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except DomainError as exc:  # not found, conflict, invalid input: the service's one line
            raise CLIError(str(exc)) from None
        except DatabaseError as exc:
            raise CLIError(
                f"the local database cannot be used ({exc}): run this on the daemon's machine "
                f"with its settings, or set {DAEMON_URL_ENV}"
            ) from None

    def submit_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self._errors():
            result = jobs.submit_jobs([spec], origin=Job.Origin.CLI)
        if not result.accepted:
            raise CLIError(error_message(_plain({**result.errors[0]["errors"], **result.as_dict()})))
        return _plain(result.as_dict())

    def query_jobs(
        self, *, status: str | None = None, vm: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with self._errors():
            found = jobs.query_jobs(status=status, vm=vm)
            count = found.count()
            rows = found[:limit] if limit else found
            return {"count": count, "results": _plain(JobSerializer(rows, many=True).data)}

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self._errors():
            return _plain(JobSerializer(jobs.get_job(job_id)).data)

    def job_logs(self, job_id: str, *, tail: int | None = None, since: int | None = None) -> dict[str, Any]:
        with self._errors():
            entries = jobs.job_logs(job_id, tail=tail, since=since)
            return {"job_id": job_id, "logs": _plain(JobLogSerializer(entries, many=True).data)}

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        with self._errors():
            job = jobs.cancel_job(job_id)
        return {"job_id": job.id, "status": job.status, "cancel_requested": job.cancel_requested}

    def daemon_status(self) -> dict[str, Any]:
        with self._errors():
            status = _plain(daemon_status.daemon_status())
        # This process is a CLI, not the daemon: its own uptime would mislead.
        status["uptime_seconds"] = None
        return status

    def list_schedules(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]:
        """``{count, page, pages, results}``: one page of schedules by name, or all (page None)."""
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
        pages = _pages(count, page_size)
        if page > pages and not (page == 1 and count == 0):
            raise no_such_page(page)
        return count, found[(page - 1) * page_size : page * page_size], page, pages

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        with self._errors():
            return _plain(ScheduleSerializer(schedules.get_schedule(schedule_id)).data)

    def create_schedule(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self._errors():
            data = _valid_schedule(ScheduleSpecSerializer(data=spec))
            return _plain(ScheduleSerializer(schedules.create_schedule(data)).data)

    def update_schedule(
        self, schedule_id: str, spec: dict[str, Any], *, partial: bool = True
    ) -> dict[str, Any]:
        with self._errors():
            schedule = schedules.get_schedule(schedule_id)
            data = _valid_schedule(ScheduleSpecSerializer(schedule, data=spec, partial=partial))
            return _plain(ScheduleSerializer(schedules.update_schedule(schedule, data)).data)

    def set_schedule_enabled(self, schedule_id: str, enabled: bool) -> dict[str, Any]:
        with self._errors():
            return _plain(ScheduleSerializer(schedules.set_enabled(schedule_id, enabled)).data)

    def trigger_schedule(self, schedule_id: str) -> dict[str, Any]:
        with self._errors():
            job = schedules.trigger(schedule_id)
        return {"schedule_id": schedule_id, "job_id": job.id}

    def delete_schedule(self, schedule_id: str) -> None:
        with self._errors():
            schedules.delete_schedule(schedule_id)

    def list_webhooks(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]:
        """``{count, page, pages, results}``: one page of webhooks with their indexes, or all."""
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
        with self._errors():
            return _plain(WebhookSerializer(webhooks.get_webhook(ref)).data)

    def add_webhook(self, spec: dict[str, Any]) -> dict[str, Any]:
        """As POST /webhooks answers: the webhook and its signing secret, shown this once."""
        with self._errors():
            checked = WebhookSpecSerializer(data=spec)
            if not checked.is_valid():
                raise CLIError(error_message(_plain(checked.errors)))
            webhook, secret = webhooks.add_webhook(**checked.validated_data)
            return _plain({**WebhookSerializer(webhook).data, **webhooks.as_given(webhook), "secret": secret})

    def delete_webhook(self, ref: str) -> None:
        with self._errors():
            webhooks.delete_webhook(ref)

    def test_webhook(self, ref: str) -> dict[str, Any]:
        with self._errors():
            return _plain(webhooks.test_webhook(ref).as_dict())

    def webhook_deliveries(self, ref: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, at most ``limit``: the first page of GET /webhooks/{ref}/deliveries."""
        with self._errors():
            found = webhooks.deliveries(ref)[:limit]
            return _plain(WebhookDeliverySerializer(found, many=True).data)


def _valid_schedule(spec: ScheduleSpecSerializer) -> dict[str, Any]:
    """The validated data, or the one line the API's 400 would have read as."""
    if not spec.is_valid():
        raise CLIError(error_message(_plain(spec.errors)))
    return spec.validated_data


class RemoteBackend:
    """A daemon's REST API: the one place the CLIs speak HTTP."""

    is_local = False

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = daemon_base_url(url)
        self.where = f"daemon at {self.base_url}"
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": f"hypersdk-cli/{hypersdk.__version__}"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self._http = httpx.Client(
            headers=headers, timeout=timeout, follow_redirects=False, transport=transport
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        expect: int = 200,
    ) -> Any:
        params = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(method, self.base_url + path, params=params, json=body)
        except httpx.TimeoutException:
            raise CLIError(
                f"cannot reach daemon at {self.base_url}: no answer within {self.timeout:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise CLIError(f"cannot reach daemon at {self.base_url}: {_reason(exc)}") from None
        if response.status_code == 401:
            raise CLIError(TOKEN_REFUSED)
        if response.status_code >= 500:
            raise CLIError(
                f"the daemon at {self.base_url} failed: HTTP {response.status_code} {response.reason_phrase}"
            )
        if response.status_code == expect == 204:
            return None
        if response.is_redirect:
            location = response.headers.get("location", "")
            raise CLIError(f"the daemon at {self.base_url} redirects to {location}: use that as --daemon-url")
        try:
            data = response.json()
        except ValueError:
            raise CLIError(
                f"unexpected answer from {self.base_url}{path}: HTTP {response.status_code}, not JSON "
                "(is this a HyperSDK daemon?)"
            ) from None
        if response.status_code != expect:
            raise CLIError(error_message(data))
        return data

    def submit_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/jobs/submit", body=spec, expect=202)

    def query_jobs(
        self, *, status: str | None = None, vm: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        seen: set[str] = set()
        page_size = min(limit, 1000) if limit else 1000
        page, count = 1, 0
        while True:
            data = self._call(
                "GET",
                "/jobs/query",
                params={"status": status, "vm": vm, "page_size": page_size, "page": page},
            )
            count = data["count"]
            # Jobs submitted meanwhile shift the pages: never list one twice.
            results.extend(job for job in data["results"] if job["id"] not in seen)
            seen.update(job["id"] for job in data["results"])
            if not data.get("next") or (limit and len(results) >= limit):
                break
            page += 1
        return {"count": count, "results": results[:limit] if limit else results}

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{quote(job_id, safe='')}")

    def job_logs(self, job_id: str, *, tail: int | None = None, since: int | None = None) -> dict[str, Any]:
        return self._call(
            "GET", f"/jobs/logs/{quote(job_id, safe='')}", params={"tail": tail, "since": since}
        )

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{quote(job_id, safe='')}/cancel")

    def daemon_status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def list_schedules(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]:
        return self._listing("/schedules", page, page_size)

    def _listing(self, path: str, page: int | None, page_size: int) -> dict[str, Any]:
        """One page of a paged list as ``{count, page, pages, results}``; page None: every page."""
        if page is not None:
            data = self._call("GET", path, params={"page": page, "page_size": page_size})
            return {**_summary(data["count"], page, page_size), "results": data["results"]}
        results: list[dict[str, Any]] = []
        seen: set[str] = set()
        number, count = 1, 0
        while True:
            data = self._call("GET", path, params={"page": number, "page_size": ALL_PAGE_SIZE})
            count = data["count"]
            # Rows added or removed meanwhile shift the pages: never list one twice.
            results.extend(row for row in data["results"] if row["id"] not in seen)
            seen.update(row["id"] for row in data["results"])
            if not data.get("next"):
                return {"count": count, "page": 1, "pages": 1, "results": results}
            number += 1

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self._call("GET", _schedule_path(schedule_id))

    def create_schedule(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/schedules", body=spec, expect=201)

    def update_schedule(
        self, schedule_id: str, spec: dict[str, Any], *, partial: bool = True
    ) -> dict[str, Any]:
        return self._call("PATCH" if partial else "PUT", _schedule_path(schedule_id), body=spec)

    def set_schedule_enabled(self, schedule_id: str, enabled: bool) -> dict[str, Any]:
        action = "enable" if enabled else "disable"
        return self._call("POST", f"{_schedule_path(schedule_id)}/{action}")

    def trigger_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self._call("POST", f"{_schedule_path(schedule_id)}/trigger", expect=202)

    def delete_schedule(self, schedule_id: str) -> None:
        self._call("DELETE", _schedule_path(schedule_id), expect=204)

    def list_webhooks(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]:
        return self._listing("/webhooks", page, page_size)

    def get_webhook(self, ref: str) -> dict[str, Any]:
        return self._call("GET", _webhook_path(ref))

    def add_webhook(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/webhooks", body=spec, expect=201)

    def delete_webhook(self, ref: str) -> None:
        self._call("DELETE", _webhook_path(ref), expect=204)

    def test_webhook(self, ref: str) -> dict[str, Any]:
        return self._call("POST", f"{_webhook_path(ref)}/test")

    def webhook_deliveries(self, ref: str, *, limit: int = 50) -> list[dict[str, Any]]:
        data = self._call("GET", f"{_webhook_path(ref)}/deliveries", params={"page_size": limit})
        return data["results"]


def _summary(count: int, page: int, page_size: int) -> dict[str, int]:
    return {"count": count, "page": page, "pages": _pages(count, page_size)}


def _schedule_path(schedule_id: str) -> str:
    return f"/schedules/{quote(schedule_id, safe='')}"


def _webhook_path(ref: str) -> str:
    return f"/webhooks/{quote(str(ref), safe='')}"


def daemon_base_url(url: str) -> str:
    base = url.strip().rstrip("/")
    try:
        parsed = httpx.URL(base)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"invalid daemon URL {url!r}: use http://host:port or https://host")
    return base


def _reason(exc: httpx.TransportError) -> str:
    """``[Errno 111] Connection refused`` reads better as ``connection refused``."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc).strip())
    return (text[:1].lower() + text[1:]) if text else exc.__class__.__name__
