"""A daemon's REST API: the one place the CLIs speak HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

import hypersdk
from cli.backends.errors import CLIError, UsageError, error_message
from cli.backends.protocol import ALL_PAGE_SIZE, LIST_PAGE_SIZE, page_count

API_TOKEN_ENV = "HYPERSDK_API_TOKEN"
TIMEOUT_SECONDS = 10.0
TOKEN_REFUSED = f"the daemon refused the API token (set {API_TOKEN_ENV})"


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
    return {"count": count, "page": page, "pages": page_count(count, page_size)}


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
