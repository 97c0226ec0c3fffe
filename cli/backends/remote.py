"""A daemon's REST API: the one place the CLIs speak HTTP."""

from __future__ import annotations

import json
import math
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

import hypersdk
from cli.backends.errors import CLIError, UsageError, error_message, one_line
from cli.backends.protocol import ALL_PAGE_SIZE, LIST_PAGE_SIZE, VMS_ALL_PAGE_SIZE, page_count
from hypersdk.lib.redaction import mask_url

API_TOKEN_ENV = "HYPERSDK_API_TOKEN"
# httpx's timeout is per read: a daemon dripping a byte at a time would never trip it, hence
# a deadline for the whole answer too.
TIMEOUT_SECONDS = 10.0
# The silence allowed before an inventory answer (GET /vms, GET /vms/{ref}, POST /vms/preflight):
# the daemon may be waiting on its vCenter, up to inventory.service.CALL_TIMEOUT (30 s) for a
# call or the vCenter connect timeout (30 s) for a log-in, and then answers its 502 line. Longer
# than those, so the CLI shows the daemon's word on the vCenter rather than blaming the daemon.
INVENTORY_TIMEOUT_SECONDS = 45.0
DEADLINE_SECONDS = 120.0
# The largest answer read (a page of 1000 jobs is about 1 MiB): an endless body stops here.
MAX_BODY_BYTES = 32 * 1024 * 1024
# A paged listing never asks for more pages than the first page's count announced, plus this
# slack for rows added meanwhile.
EXTRA_PAGES = 2
# The job ids the API hands out (exports.models.new_job_id) are URL-safe and short; another id
# names no job, and would not fit a URL path either.
JOB_ID_SHAPE = re.compile(r"[A-Za-z0-9._~-]{1,64}")
TOKEN_REFUSED = f"the daemon refused the API token (set {API_TOKEN_ENV})"
# What reading an answer of the right outer shape but with missing or mistyped fields raises
# (a KeyError for a missing field, a TypeError or AttributeError for a mistyped one, an
# OverflowError for a count of 400 digits, a RecursionError for JSON nested too deep).
UNREADABLE_ANSWER = (
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ValueError,
    OverflowError,
    RecursionError,
)


class RemoteBackend:
    """A daemon's REST API: the one place the CLIs speak HTTP."""

    is_local = False

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        deadline: float = DEADLINE_SECONDS,
        inventory_timeout: float = INVENTORY_TIMEOUT_SECONDS,
        max_body: int = MAX_BODY_BYTES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = daemon_base_url(url)
        self.shown_url = mask_url(self.base_url)
        self.where = f"daemon at {self.shown_url}"
        self.timeout = timeout
        self.deadline = deadline
        self.inventory_timeout = max(timeout, inventory_timeout)
        self.max_body = max_body
        headers = {"Accept": "application/json", "User-Agent": f"hypersdk-cli/{hypersdk.__version__}"}
        if token:
            check_token(token)
            headers["Authorization"] = f"Token {token}"
        # No kept-alive connections: each request connects anew, so that its deadline (_Deadline)
        # knows the socket to shut. A CLI makes a few requests, to a nearby daemon.
        self._http = httpx.Client(
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        expect: int = 200,
        wait: float | None = None,
    ) -> Any:
        """``wait``: seconds of silence allowed while the daemon prepares its answer (default
        ``timeout``; connecting to the daemon always has ``timeout``)."""
        params = {name: value for name, value in (params or {}).items() if value is not None}
        wait = wait or self.timeout
        try:
            status, reason, headers, content = self._fetch(method, path, params, body, wait)
        except httpx.TimeoutException as exc:
            waited = wait if isinstance(exc, httpx.ReadTimeout) else self.timeout
            raise CLIError(
                f"cannot reach daemon at {self.shown_url}: no answer within {waited:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise CLIError(f"cannot reach daemon at {self.shown_url}: {_reason(exc)}") from None
        except httpx.InvalidURL:
            raise CLIError(f"cannot ask daemon at {self.shown_url}: the request's URL is invalid") from None
        if status == 401:
            raise CLIError(TOKEN_REFUSED)
        if status == 502 and (detail := _gateway_detail(content)):
            raise CLIError(detail)  # the daemon could not reach its vCenter: it says why
        if status >= 500:
            raise CLIError(f"the daemon at {self.shown_url} failed: HTTP {status} {reason}")
        if status == expect == 204:
            return None
        if 300 <= status < 400 and "location" in headers:
            location = mask_url(one_line(headers["location"]))
            raise CLIError(
                f"the daemon at {self.shown_url} redirects to {location}: use that as --daemon-url"
            )
        try:
            data = json.loads(content)
        except ValueError:
            raise CLIError(
                f"unexpected answer from {self.shown_url}{path}: HTTP {status}, not JSON "
                "(is this a HyperSDK daemon?)"
            ) from None
        if status != expect:
            raise CLIError(error_message(data))
        if not isinstance(data, dict):
            raise self.unexpected(path)
        return data

    def _fetch(
        self, method: str, path: str, params: dict[str, Any], body: Any, wait: float
    ) -> tuple[int, str, httpx.Headers, bytes]:
        """Status, reason, headers and body, the body at most ``max_body`` bytes and the whole
        answer within ``deadline`` seconds (a CLIError otherwise)."""
        chunks, size = [], 0
        too_slow = CLIError(
            f"the daemon at {self.shown_url} did not finish its answer within {self.deadline:g} s"
        )
        with _Deadline(self.deadline) as deadline:
            try:
                with self._http.stream(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    timeout=httpx.Timeout(self.timeout, read=wait),
                    extensions={"trace": deadline.trace},
                ) as response:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_body:
                            raise CLIError(
                                f"the daemon at {self.shown_url} answered more than "
                                f"{self.max_body // 2**20} MiB: is this a HyperSDK daemon?"
                            )
                        if deadline.expired:
                            raise too_slow
                        chunks.append(chunk)
                    if deadline.expired:
                        raise too_slow
                    return response.status_code, response.reason_phrase, response.headers, b"".join(chunks)
            except httpx.HTTPError:
                if deadline.expired:  # our shutdown of the socket, not the daemon's failure
                    raise too_slow from None
                raise

    @contextmanager
    def reading_answers(self) -> Iterator[None]:
        """The one boundary around a command's use of this daemon's answers: an answer the CLI
        cannot read (``UNREADABLE_ANSWER``, raised while reading or rendering it) is the CLIError
        ``unexpected answer from the daemon at <url>`` rather than a traceback."""
        try:
            yield
        except UNREADABLE_ANSWER:
            raise CLIError(f"unexpected answer from the daemon at {self.shown_url}") from None

    def unexpected(self, path: str) -> CLIError:
        return CLIError(f"unexpected answer from the daemon at {self.shown_url}{path}")

    def submit_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/jobs/submit", body=spec, expect=202)

    def query_jobs(
        self,
        *,
        status: str | None = None,
        vm: str | None = None,
        limit: int | None = None,
        id_prefix: str | None = None,
    ) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        seen: set[str] = set()
        page_size = min(limit, 1000) if limit else 1000
        page, count, last_page = 1, 0, 1
        while True:
            path = "/jobs/query"
            data = self._call(
                "GET",
                path,
                params={
                    "status": status,
                    "vm": vm,
                    "id_prefix": id_prefix,
                    "page_size": page_size,
                    "page": page,
                },
            )
            count, rows = self._page(path, data)
            if page == 1:
                last_page = math.ceil(count / page_size) + EXTRA_PAGES
            # Jobs submitted meanwhile shift the pages: never list one twice.
            results.extend(job for job in rows if job["id"] not in seen)
            seen.update(job["id"] for job in rows)
            if not data.get("next") or (limit and len(results) >= limit):
                break
            page += 1
            if page > last_page:
                raise self.endless(path, count)
        return {"count": count, "results": results[:limit] if limit else results}

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{_job_segment(job_id)}")

    def job_logs(self, job_id: str, *, tail: int | None = None, since: int | None = None) -> dict[str, Any]:
        return self._call("GET", f"/jobs/logs/{_job_segment(job_id)}", params={"tail": tail, "since": since})

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{_job_segment(job_id)}/cancel")

    def daemon_status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def list_schedules(self, *, page: int | None = 1, page_size: int = LIST_PAGE_SIZE) -> dict[str, Any]:
        return self._listing("/schedules", page, page_size)

    def _listing(
        self,
        path: str,
        page: int | None,
        page_size: int,
        *,
        params: dict[str, Any] | None = None,
        key: str = "id",
        keep: tuple[str, ...] = (),
        all_page_size: int = ALL_PAGE_SIZE,
        wait: float | None = None,
    ) -> dict[str, Any]:
        """One page of a paged list as ``{count, page, pages, results}`` (plus the first page's
        ``keep`` fields); page None: every page. ``params``: the list's filters; ``refresh`` goes
        with the first page only (the next ones come from the cache it filled). ``key``: the
        field naming a row, which a row listed twice (the pages shifted) is known by."""
        params = {**(params or {})}
        if page is not None:
            data = self._call("GET", path, params={**params, "page": page, "page_size": page_size}, wait=wait)
            count, rows = self._page(path, data, key=key)
            return {**_summary(count, page, page_size), "results": rows, **_kept(data, keep)}
        results: list[dict[str, Any]] = []
        seen: set[str] = set()
        number, count, last_page, first = 1, 0, 1, {}
        while True:
            data = self._call(
                "GET", path, params={**params, "page": number, "page_size": all_page_size}, wait=wait
            )
            count, rows = self._page(path, data, key=key)
            if number == 1:
                last_page = math.ceil(count / all_page_size) + EXTRA_PAGES
                first = _kept(data, keep)
                params.pop("refresh", None)
            # Rows added or removed meanwhile shift the pages: never list one twice.
            results.extend(row for row in rows if row[key] not in seen)
            seen.update(row[key] for row in rows)
            if not data.get("next"):
                return {"count": count, "page": 1, "pages": 1, "results": results, **first}
            number += 1
            if number > last_page:
                raise self.endless(path, count)

    def _page(
        self, path: str, data: dict[str, Any], *, ids: bool = True, key: str = "id"
    ) -> tuple[int, list[dict[str, Any]]]:
        """A paged answer's count and rows, each row a JSON object (with a ``key`` if ``ids``);
        else a CLIError."""
        count, rows = data.get("count"), data.get("results")
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or count < 0
            or not isinstance(rows, list)
            or not all(
                isinstance(row, dict) and (not ids or isinstance(row.get(key), str | int)) for row in rows
            )
        ):
            raise self.unexpected(path)
        return count, rows

    def endless(self, path: str, count: int) -> CLIError:
        return CLIError(
            f"the daemon at {self.shown_url}{path} keeps announcing more pages than its {count} rows fill"
        )

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
        path = f"{_webhook_path(ref)}/deliveries"
        return self._page(path, self._call("GET", path, params={"page_size": limit}), ids=False)[1]

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
        filters = {"q": q, "folder": folder, "power_state": power_state, "guest_os": guest_os}
        params = {name: value for name, value in filters.items() if value}
        params |= {"vcenter": vcenter, "refresh": "1" if refresh else None}
        return self._listing(
            "/vms",
            page,
            page_size,
            params=params,
            key="moref",
            keep=("vcenter", "cached_at"),
            all_page_size=VMS_ALL_PAGE_SIZE,
            wait=self.inventory_timeout,
        )

    def get_vm(self, ref: str, *, vcenter: str | None = None, refresh: bool = False) -> dict[str, Any]:
        return self._call(
            "GET",
            _vm_path(ref),
            params={"vcenter": vcenter, "refresh": "1" if refresh else None},
            wait=self.inventory_timeout,
        )

    def preflight(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/vms/preflight", body=spec, wait=self.inventory_timeout)


def _kept(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: data.get(name) for name in names}


def _vm_path(ref: str) -> str:
    """``/vms/<ref>``, each segment of the inventory path quoted: a ``%2f`` (a ``/`` inside a VM's
    name, as vCenter escapes it) goes as ``%252f``, distinct from a ``/``; ``.`` and ``..`` as
    ``%2E``, which no client folds away."""
    segments = ref.lstrip("/").split("/")
    if not ref.strip("/"):
        raise CLIError("VM not found: give its inventory path or moref")
    quoted = [quote(part, safe="") if part not in (".", "..") else "%2E" * len(part) for part in segments]
    return "/vms/" + "/".join(quoted)


def _gateway_detail(content: bytes) -> str:
    """A 502's ``{"detail": ...}`` as one line (the daemon's word on its vCenter); "" when the
    body is another's (a proxy's page)."""
    try:
        data = json.loads(content)
    except ValueError:
        return ""
    return error_message(data) if isinstance(data, dict) and isinstance(data.get("detail"), str) else ""


def _summary(count: int, page: int, page_size: int) -> dict[str, int]:
    return {"count": count, "page": page, "pages": page_count(count, page_size)}


class _Deadline:
    """Shuts a request's socket when its whole answer takes longer than ``seconds``: httpx's
    timeouts are per read, which a daemon sending a byte now and then never trips (headers
    included). The socket comes from httpcore's trace of the connection."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            with self._lock:
                self._socket = info["return_value"].get_extra_info("socket")
                if self.expired:
                    self._shut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shut()

    def _shut(self) -> None:
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass


def _job_segment(job_id: str) -> str:
    """``job_id`` for a URL path; an id of another shape is no job, as the local services say
    (it could not reach the job's URL intact: a ``/``, ``.`` or ``..``, or longer than a URL may be)."""
    if not JOB_ID_SHAPE.fullmatch(job_id) or job_id in (".", ".."):
        raise CLIError(f"job not found: {one_line(job_id)[:80]}")
    return job_id


def _segment(what: str, ref: str) -> str:
    """``ref`` as one URL path segment. ``.``, ``..`` and a ``/`` name no row: httpx would fold
    them into another path (``/webhooks/.`` is the list), so they are "not found" as locally."""
    if ref in (".", "..") or "/" in ref:
        raise CLIError(f"{what} not found: {one_line(ref)[:80]}")
    return quote(ref, safe="")


def _schedule_path(schedule_id: str) -> str:
    return f"/schedules/{_segment('schedule', schedule_id)}"


def _webhook_path(ref: str) -> str:
    return f"/webhooks/{_segment('webhook', str(ref))}"


def daemon_base_url(url: str) -> str:
    base = url.strip().rstrip("/")
    try:
        parsed = httpx.URL(base)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(
            f"invalid daemon URL {_userinfo_masked(url)!r}: use http://host:port or https://host"
        )
    return base


def _userinfo_masked(url: str) -> str:
    """``url`` with whatever lies between ``//`` and the last ``@`` masked: a password, even in a
    URL no parser takes (mask_url shows nothing of those)."""
    return re.sub(r"//.*@", "//***@", url, flags=re.DOTALL)


def check_token(token: str) -> None:
    """A token goes into a header as is: one that cannot is a one-line error that never shows it."""
    if not token.isascii():
        raise CLIError(
            "the API token contains a non-ASCII character: check the token file or $" + API_TOKEN_ENV
        )
    if not token.isprintable():
        raise CLIError(
            "the API token contains a line break or non-printable character: check the token file or $"
            + API_TOKEN_ENV
        )


def _reason(exc: httpx.TransportError) -> str:
    """``[Errno 111] Connection refused`` reads better as ``connection refused``."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc).strip())
    return (text[:1].lower() + text[1:]) if text else exc.__class__.__name__
