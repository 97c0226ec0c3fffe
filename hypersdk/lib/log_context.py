"""The job id on every log line of a job: a context set while a worker runs the job, a filter
that stamps it on each record, and the plain and JSON formats settings.LOGGING uses.

Export threads (downloads, the lease keepalive, the job session) do not inherit a
``ContextVar``, so a process that runs exactly one job at a time — a Celery prefork child —
also stamps records from those threads with that job's id.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

NO_JOB = "-"

_job_id: ContextVar[str | None] = ContextVar("hypersdk_job_id", default=None)
_lock = threading.Lock()
_running: list[str] = []  # the jobs running in this process, one entry per enter_job
_tokens = threading.local()  # per thread: the ContextVar tokens to reset, innermost last


def enter_job(job_id: str) -> None:
    """From here on (in this thread, until ``leave_job``) log records carry ``job_id``."""
    token = _job_id.set(job_id)
    _tokens.__dict__.setdefault("stack", []).append((token, job_id))
    with _lock:
        _running.append(job_id)


def leave_job() -> None:
    token, job_id = _tokens.stack.pop()
    with _lock:
        _running.remove(job_id)
    _job_id.reset(token)


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    enter_job(job_id)
    try:
        yield
    finally:
        leave_job()


def current_job_id() -> str | None:
    job_id = _job_id.get()
    if job_id:
        return job_id
    with _lock:
        # Another thread of this process: unambiguous only while a single job runs here.
        return _running[0] if len(set(_running)) == 1 else None


class JobIdFilter(logging.Filter):
    """Sets ``record.job_id``: the running job's id, an explicit ``extra={"job_id": ...}``, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "job_id", None):
            record.job_id = current_job_id() or NO_JOB
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (HYPERSDK_LOG_FORMAT=json), for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "job_id": None if getattr(record, "job_id", NO_JOB) == NO_JOB else record.job_id,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


PLAIN_FORMAT = "%(levelname)s %(name)s job_id=%(job_id)s: %(message)s"


def logging_config(*, format_name: str, level: str) -> dict:
    """settings.LOGGING: every handler line goes through the job-id filter."""
    if format_name not in {"plain", "json"}:
        from hypersdk.lib.env import ConfigError

        raise ConfigError(f"HYPERSDK_LOG_FORMAT must be plain or json, got {format_name!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"job_id": {"()": "hypersdk.lib.log_context.JobIdFilter"}},
        "formatters": {
            "plain": {"format": PLAIN_FORMAT},
            "json": {"()": "hypersdk.lib.log_context.JsonFormatter"},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": format_name, "filters": ["job_id"]}
        },
        "root": {"handlers": ["stderr"], "level": level},
    }
