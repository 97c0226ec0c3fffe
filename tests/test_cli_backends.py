"""The CLIs' daemon side: rendering, the local and remote backends (same dicts), watch and logs -f."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime

import psutil
import pytest

from cli import render
from cli.backends import (
    TOKEN_REFUSED,
    CLIError,
    LocalBackend,
    RemoteBackend,
    UsageError,
    error_message,
    open_backend,
    read_token,
)
from cli.follow import show_logs, watch_job
from cli.hyperexport_daemon import job_spec
from cli.terminal import Terminal
from exports import job_queue, jobs, lifecycle
from exports.models import Job, JobLog
from hypersdk.cli import uses_daemon
from hypersdk.lib.daemon_record import daemon_uptime_seconds, record_path, write_daemon_record
from tests.cli_runner import every_export_option

WEB01 = "/dc/vm/prod/web01"


def job_dict(**overrides) -> dict:
    """A job as the API sends it."""
    job = {
        "id": "job-abc123XYZ",
        "vm_path": WEB01,
        "vcenter": None,
        "output_path": "/exports/web01",
        "format": "ova",
        "compress": True,
        "manifest": True,
        "manifest_target": "qcow2",
        "convert": False,
        "verify": False,
        "options": {"format": "ova", "compress": True, "manifest": True, "parallel": 4},
        "status": "running",
        "origin": "cli",
        "progress": {
            "percent": 45.25,
            "phase": "downloading",
            "current_file": "web01-disk1.vmdk",
            "bytes_done": 10 << 20,
            "bytes_total": 24 << 20,
            "rate_bps": 4 << 20,
            "eta_seconds": 3.5,
        },
        "result": None,
        "error": "",
        "created_at": "2026-01-22T10:30:00Z",
        "started_at": "2026-01-22T10:30:01Z",
        "finished_at": None,
        "duration_seconds": 14.0,
        "heartbeat_at": "2026-01-22T10:30:10Z",
        "worker": "host:42",
        "cancel_requested": False,
    }
    return job | overrides


def terminal() -> tuple[Terminal, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Terminal(out, err), out, err


# ---- rendering -----------------------------------------------------------------------------


def test_watch_line_shows_percent_phase_and_file_of_a_running_job():
    line = render.watch_line(job_dict(), datetime(2026, 1, 22, 10, 30, 15))
    assert line == "[10:30:15] running 45.2% - downloading web01-disk1.vmdk"


@pytest.mark.parametrize(
    ("status", "error", "text", "outcome"),
    [
        ("completed", "", "completed - export finished", "✅ Job completed successfully!"),
        ("failed", "disk full", "failed - export failed", "❌ Job failed: disk full"),
        ("cancelled", "cancelled by request", "cancelled - export cancelled", "⚠️ Job cancelled"),
    ],
)
def test_a_finished_job_reads_as_the_guide_shows(status, error, text, outcome):
    job = job_dict(status=status, error=error)
    assert render.watch_text(job) == text
    assert render.outcome_line(job) == outcome


def test_a_pending_job_waits_for_a_worker():
    assert render.watch_text(job_dict(status="pending")) == "pending - waiting for a worker"


def test_job_table_has_the_guide_columns_aligned():
    lines = render.job_table([job_dict(), job_dict(id="job-2", status="pending", vm_path="/dc/vm/a")])
    assert lines[0].split() == ["ID", "STATUS", "PROGRESS", "VM", "OUTPUT", "CREATED"]
    assert lines[1].split()[:5] == ["job-abc123XYZ", "running", "45.2%", WEB01, "/exports/web01"]
    assert lines[2].split()[:3] == ["job-2", "pending", "-"]
    assert lines[0].index("STATUS") == lines[1].index("running") == lines[2].index("pending")
    assert lines[0].index("VM") == lines[1].index(WEB01) == lines[2].index("/dc/vm/a")


def test_quiet_lines_are_id_status_vm_separated_by_tabs():
    assert render.job_tsv([job_dict()]) == [f"job-abc123XYZ\trunning\t{WEB01}"]


def test_job_detail_names_error_and_files():
    job = job_dict(
        status="failed",
        error="VM not found: /dc/vm/prod/web01",
        result={"files": [{"name": "web01.ova", "size": 2048, "sha256": "ab" * 32}], "total_bytes": 2048},
    )
    lines = render.job_detail(job)
    assert "Error:    VM not found: /dc/vm/prod/web01" in lines
    assert f"Files:    web01.ova  2.0 KiB  sha256:{'ab' * 32}" in lines
    assert "Options:  format=ova compress manifest target=qcow2 parallel=4" in lines


def test_status_lines_give_health_uptime_jobs_and_machine():
    status = {
        "health": "ok",
        "version": "0.2.0",
        "uptime_seconds": 3 * 3600 + 12 * 60,
        "jobs": {"pending": 1, "running": 1, "completed": 10, "failed": 2, "cancelled": 0},
        "active_jobs": [
            {"id": "job-1", "vm_path": WEB01, "percent": 45.2, "phase": "downloading", "worker": "w:1"}
        ],
        "workers": ["w1@host"],
        "max_concurrent_exports": 4,
        "system": {
            "load_average": [0.5, 0.4, 0.3],
            "cpu_count": 4,
            "memory_total_bytes": 8 << 30,
            "memory_available_bytes": 4 << 30,
            "memory_percent": 50.0,
        },
        "export_roots": [{"path": "/exports", "exists": True, "free_bytes": 1 << 30, "total_bytes": 2 << 30}],
        "database": "postgresql",
    }
    text = "\n".join(render.status_lines(status, "daemon at http://h:8080"))
    assert "Daemon:       ok, version 0.2.0, up 3h 12m (daemon at http://h:8080)" in text
    assert "1 running, 1 pending, 10 completed, 2 failed, 0 cancelled" in text
    assert "job-1  45.2% downloading  /dc/vm/prod/web01  on w:1" in text
    assert "load 0.50 0.40 0.30, 4 CPUs, memory 50.0% used (4.0 GiB of 8.0 GiB available)" in text
    assert "/exports (1.0 GiB free of 2.0 GiB)" in text


def test_log_line_is_local_time_level_message():
    entry = {"id": 7, "at": "2026-01-22T10:30:15Z", "level": "error", "message": "disk full"}
    at = datetime.fromisoformat("2026-01-22T10:30:15+00:00").astimezone()
    assert render.log_line(entry) == f"{at:%Y-%m-%d %H:%M:%S} ERROR   disk full"


# ---- errors, tokens, flags ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"detail": "job not found: job-x"}, "job not found: job-x"),
        (
            {"vm_path": ["give the VM's inventory path"], "format": ['"zip" is not a valid choice.'], "accepted": 0},
            "vm_path: give the VM's inventory path; format: \"zip\" is not a valid choice.",
        ),
        ({"output_path": ["output_path must be inside one of the export roots: /exports"]},
         "output_path must be inside one of the export roots: /exports"),
        ({"non_field_errors": ["a job must be a JSON object"]}, "a job must be a JSON object"),
        ({"job_ids": [], "accepted": 0, "rejected": 1, "errors": [{"index": 0, "errors": {"vm_path": ["bad"]}}]},
         "job 0: vm_path: bad"),
    ],
)  # fmt: skip
def test_api_errors_fit_on_one_line(body, message):
    assert error_message(body) == message


def test_token_comes_from_the_file_before_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERSDK_API_TOKEN", "from-env")
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert read_token(str(token_file)) == "from-file"
    assert read_token(None) == "from-env"


def test_an_unreadable_token_file_is_an_error(tmp_path):
    with pytest.raises(CLIError, match="cannot read token file .*/missing: No such file"):
        read_token(str(tmp_path / "missing"))


@pytest.mark.parametrize("url", ["ftp://host/", "localhost:8080", "http://"])
def test_a_daemon_url_must_be_http(url):
    with pytest.raises(UsageError, match="invalid daemon URL"):
        RemoteBackend(url, "")


def test_no_url_means_the_local_services(db, monkeypatch):
    monkeypatch.delenv("HYPERSDK_DAEMON_URL", raising=False)
    assert isinstance(open_backend(), LocalBackend)
    monkeypatch.setenv("HYPERSDK_DAEMON_URL", "http://127.0.0.1:8080/")
    backend = open_backend()
    assert isinstance(backend, RemoteBackend) and backend.base_url == "http://127.0.0.1:8080"


def test_an_unreachable_daemon_names_its_url_and_the_reason():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CLIError) as caught:
        RemoteBackend(f"http://127.0.0.1:{port}", "t").daemon_status()
    assert str(caught.value) == f"cannot reach daemon at http://127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize(
    ("argv", "daemon"),
    [
        (["-vm", WEB01, "-output", "/x"], False),
        (["--use-daemon", "-vm", WEB01], True),
        (["-daemon-list", "running"], True),
        (["--daemon-list=running"], True),
        (["--daemon-status", "--daemon-url", "http://h:1"], True),
        (["-vm", "/dc/vm/daemon-status"], False),
    ],
)
def test_only_daemon_flags_pay_for_the_full_django_start_up(argv, daemon):
    assert uses_daemon(argv) is daemon


def daemon_opts(**given) -> dict:
    opts = dict.fromkeys(
        (
            "vm",
            "output",
            "format",
            "manifest_target",
            "parallel",
            "hyper2kvm_path",
            "vcenter",
            "conversion_timeout",
        )
    )
    opts.update(dict.fromkeys(("compress", "manifest", "convert", "verify", "power_off", "overwrite"), False))
    return opts | given


def test_job_spec_carries_only_the_flags_given():
    assert job_spec(daemon_opts(vm=WEB01), local=False) == {"vm_path": WEB01}


def test_job_spec_passes_every_export_flag_through():
    spec = job_spec(
        daemon_opts(
            vm=WEB01, output="/exports/web01", format="ova", compress=True, manifest=True, manifest_target="raw",
            convert=True, verify=True, parallel=2, power_off=True, hyper2kvm_path="/usr/bin/hyper2kvm",
            conversion_timeout="2h", overwrite=True,
        ),
        local=False,
    )  # fmt: skip
    assert spec == {
        "vm_path": WEB01,
        "output_path": "/exports/web01",
        **every_export_option("/usr/bin/hyper2kvm", conversion_timeout=120),
    }


def test_conversion_timeout_rounds_up_to_whole_minutes():
    assert job_spec(daemon_opts(vm=WEB01, conversion_timeout="45s"), local=False)["conversion_timeout"] == 1
    assert job_spec(daemon_opts(vm=WEB01, conversion_timeout="90"), local=False)["conversion_timeout"] == 90


def test_a_relative_output_is_refused_for_a_remote_daemon_and_resolved_locally(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="absolute path on the daemon's machine"):
        job_spec(daemon_opts(vm=WEB01, output="exports/web01"), local=False)
    monkeypatch.chdir(tmp_path)
    spec = job_spec(daemon_opts(vm=WEB01, output="exports/web01"), local=True)
    assert spec["output_path"] == str(tmp_path / "exports" / "web01")


# ---- the local backend ----------------------------------------------------------------------


def submit(export_root, vm: str = WEB01) -> str:
    return jobs.submit_jobs(
        [{"vm_path": vm, "output_path": str(export_root / vm.rsplit("/", 1)[-1])}]
    ).job_ids[0]


def test_local_submit_creates_a_cli_job(db, export_root):
    answer = LocalBackend().submit_job(
        {"vm_path": WEB01, "output_path": str(export_root / "w"), "format": "ova"}
    )
    assert answer["accepted"] == 1 and answer["rejected"] == 0
    job = Job.objects.get(id=answer["job_ids"][0])
    assert (job.origin, job.status, job.options["format"]) == ("cli", "pending", "ova")


def test_local_submit_refusal_is_one_line_of_field_errors(db):
    with pytest.raises(CLIError) as caught:
        LocalBackend().submit_job({"vm_path": "web01", "format": "zip"})
    assert str(caught.value) == (
        'vm_path: give the VM\'s inventory path, e.g. /dc/vm/prod/web01; format: "zip" is not a valid choice.'
    )
    assert not Job.objects.exists()


def test_local_backend_answers_plain_json_dicts(db, export_root):
    job_id = submit(export_root)
    backend = LocalBackend()
    job = backend.get_job(job_id)
    assert job == json.loads(json.dumps(job))
    assert job["status"] == "pending" and job["progress"]["percent"] == 0.0
    assert job["created_at"].endswith("Z")
    found = backend.query_jobs(status="pending")
    assert found["count"] == 1 and [j["id"] for j in found["results"]] == [job_id]
    assert backend.query_jobs(status="failed") == {"count": 0, "results": []}
    logs = backend.job_logs(job_id)
    assert logs["job_id"] == job_id and logs["logs"][0]["message"].startswith("submitted (api)")


def test_local_query_limit_keeps_the_newest(db, export_root):
    ids = [submit(export_root, f"/dc/vm/prod/vm{i}") for i in range(3)]
    found = LocalBackend().query_jobs(limit=2)
    assert found["count"] == 3 and len(found["results"]) == 2
    assert ids[0] not in {job["id"] for job in found["results"]}


def test_local_cancel_of_a_pending_job_and_of_a_finished_one(db, export_root):
    job_id = submit(export_root)
    backend = LocalBackend()
    assert backend.cancel_job(job_id) == {"job_id": job_id, "status": "cancelled", "cancel_requested": False}
    with pytest.raises(CLIError, match=f"^job {job_id} already cancelled$"):
        backend.cancel_job(job_id)


def test_local_unknown_job(db):
    with pytest.raises(CLIError, match="^job not found: job-nope$"):
        LocalBackend().get_job("job-nope")
    with pytest.raises(CLIError, match="^job not found: job-nope$"):
        LocalBackend().job_logs("job-nope")


def test_local_status_has_no_uptime_of_its_own_when_no_daemon_runs(db, redis_url, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    status = LocalBackend().daemon_status()
    assert status["health"] == "ok" and status["uptime_seconds"] is None
    assert set(status["jobs"]) == set(Job.Status.values)
    assert "uptime unknown (no hypervisord runs here)" in render.status_lines(status, "local")[0]


def test_local_status_reads_the_daemons_uptime_from_its_record(db, redis_url, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_daemon_record(tmp_path, pid=daemon.pid)
        started = psutil.Process(daemon.pid).create_time()
        uptime = LocalBackend().daemon_status()["uptime_seconds"]
        assert uptime is not None and abs(uptime - (time.time() - started)) < 5
    finally:
        daemon.kill()
        daemon.wait()
    assert LocalBackend().daemon_status()["uptime_seconds"] is None  # a dead daemon's record


def test_a_daemon_record_naming_a_reused_pid_is_no_daemon(tmp_path):
    record_path(tmp_path).write_text(json.dumps({"pid": os.getpid(), "started": 12.0}))
    assert daemon_uptime_seconds(tmp_path) is None


@pytest.mark.parametrize("started", ["soon", None, [1]])
def test_a_daemon_record_with_a_start_that_is_no_number_is_no_daemon(tmp_path, started):
    record_path(tmp_path).write_text(json.dumps({"pid": os.getpid(), "started": started}))
    assert daemon_uptime_seconds(tmp_path) is None


def test_a_daemon_record_nested_too_deep_to_read_is_no_daemon(tmp_path):
    record_path(tmp_path).write_text("[" * 100_000 + "]" * 100_000)
    assert daemon_uptime_seconds(tmp_path) is None


def test_a_refused_database_is_one_line(db):
    from django.db import OperationalError

    with pytest.raises(CLIError) as caught, LocalBackend()._errors():
        raise OperationalError(
            'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running?'
        )
    assert "\n" not in str(caught.value) and "Connection refused Is the server running?" in str(caught.value)


# ---- watch and logs -f, on the local backend with the worker's steps played in between -------


def play(*steps):
    """A ``sleep`` that runs the next worker step instead of sleeping."""
    remaining = iter(steps)
    return lambda _seconds: next(remaining)()


def test_watch_prints_a_line_per_change_then_success(db, export_root):
    job_id = submit(export_root)
    term, out, _ = terminal()
    code = watch_job(
        LocalBackend(),
        job_id,
        term,
        sleep=play(
            lambda: job_queue.claim_job(job_id, "test-worker"),
            lambda: Job.objects.filter(id=job_id).update(
                phase="downloading", current_file="web01-disk1.vmdk", percent=45.25
            ),
            lambda: None,  # nothing changed: no line
            lambda: job_queue.finish_job(job_id, "completed", result={}),
        ),
        now=lambda: datetime(2026, 1, 22, 10, 30, 15),
    )
    assert code == 0
    assert out.getvalue().splitlines() == [
        "[10:30:15] pending - waiting for a worker",
        "[10:30:15] running 0.0% - starting",
        "[10:30:15] running 45.2% - downloading web01-disk1.vmdk",
        "[10:30:15] completed - export finished",
        "✅ Job completed successfully!",
    ]


@pytest.mark.parametrize(
    ("finish", "outcome"),
    [
        (
            lambda job_id: job_queue.finish_job(job_id, "failed", error="disk full"),
            "❌ Job failed: disk full",
        ),
        (
            lambda job_id: job_queue.finish_job(job_id, "cancelled", error="cancelled by request"),
            "⚠️ Job cancelled",
        ),
    ],
    ids=["failed", "cancelled"],
)
def test_watch_of_a_job_that_does_not_complete_exits_1(db, export_root, finish, outcome):
    job_id = submit(export_root)
    job_queue.claim_job(job_id, "test-worker")
    term, out, _ = terminal()
    code = watch_job(LocalBackend(), job_id, term, sleep=play(lambda: finish(job_id)))
    assert code == 1
    assert out.getvalue().splitlines()[-1] == outcome


def test_ctrl_c_stops_watching_and_leaves_the_job_running(db, export_root):
    job_id = submit(export_root)
    job_queue.claim_job(job_id, "test-worker")

    def ctrl_c(_seconds):
        raise KeyboardInterrupt

    term, _, err = terminal()
    assert watch_job(LocalBackend(), job_id, term, sleep=ctrl_c) == 130
    assert err.getvalue() == f"stopped watching; job {job_id} keeps running\n"
    assert Job.objects.get(id=job_id).status == "running"


def test_logs_tail_gives_the_last_lines(db, export_root):
    job_id = submit(export_root)
    for n in range(5):
        lifecycle.append_log(job_id, f"line {n}")
    term, out, _ = terminal()
    assert show_logs(LocalBackend(), job_id, term, tail=2) == 0
    assert [line.split(maxsplit=3)[-1] for line in out.getvalue().splitlines()] == ["line 3", "line 4"]


def test_logs_follow_prints_new_lines_until_the_job_has_finished(db, export_root):
    job_id = submit(export_root)
    term, out, _ = terminal()
    code = show_logs(
        LocalBackend(),
        job_id,
        term,
        follow=True,
        sleep=play(
            lambda: job_queue.claim_job(job_id, "test-worker"),
            lambda: None,
            lambda: lifecycle.append_log(job_id, "downloading web01-disk1.vmdk"),
            lambda: job_queue.finish_job(job_id, "completed", result={}),
            lambda: None,  # finished, its last line just read: one more look finds nothing new
        ),
    )
    assert code == 0
    messages = [line.split(maxsplit=3)[-1] for line in out.getvalue().splitlines()]
    assert messages == [
        f"submitted (api): {WEB01} -> {export_root / 'web01'}",
        "started on test-worker",
        "downloading web01-disk1.vmdk",
        "completed",
    ]
    assert len(messages) == JobLog.objects.filter(job_id=job_id).count()


def test_logs_follow_of_a_finished_job_returns_at_once(db, export_root):
    job_id = submit(export_root)
    jobs.cancel_job(job_id)
    term, out, _ = terminal()

    def no_sleep(_seconds):
        raise AssertionError("a finished job with nothing new must not be polled again")

    assert show_logs(LocalBackend(), job_id, term, follow=True, sleep=no_sleep) == 0
    assert out.getvalue().splitlines()[-1].endswith("cancelled before it started")


# ---- the remote backend: the same dicts over HTTP --------------------------------------------


def test_remote_and_local_backends_answer_the_same(daemon, export_root):
    job_id = submit(export_root)
    lifecycle.append_log(job_id, "a line")
    local, remote = LocalBackend(), RemoteBackend(daemon.url, daemon.token)
    assert remote.get_job(job_id) == local.get_job(job_id)
    assert remote.query_jobs(status="pending") == local.query_jobs(status="pending")
    assert remote.job_logs(job_id, tail=1) == local.job_logs(job_id, tail=1)
    first = local.job_logs(job_id)["logs"][0]["id"]
    assert remote.job_logs(job_id, since=first) == local.job_logs(job_id, since=first)
    assert remote.cancel_job(job_id) == {"job_id": job_id, "status": "cancelled", "cancel_requested": False}


def test_remote_query_follows_pages_up_to_the_limit(daemon, export_root):
    ids = [submit(export_root, f"/dc/vm/prod/vm{i}") for i in range(5)]
    remote = RemoteBackend(daemon.url, daemon.token)
    everything = remote.query_jobs()
    assert everything["count"] == 5 and [job["id"] for job in everything["results"]] == ids[::-1]
    assert [job["id"] for job in remote.query_jobs(limit=3)["results"]] == ids[::-1][:3]


def test_remote_errors_read_like_local_ones(daemon, export_root):
    job_id = submit(export_root)
    jobs.cancel_job(job_id)
    remote = RemoteBackend(daemon.url, daemon.token)
    with pytest.raises(CLIError, match=f"^job {job_id} already cancelled$"):
        remote.cancel_job(job_id)
    with pytest.raises(CLIError, match="^job not found: job-nope$"):
        remote.get_job("job-nope")
    with pytest.raises(CLIError, match="^vm_path: give the VM's inventory path, e.g. /dc/vm/prod/web01$"):
        remote.submit_job({"vm_path": "web01"})


def test_remote_submit_is_an_api_job(daemon, export_root):
    answer = RemoteBackend(daemon.url, daemon.token).submit_job(
        {"vm_path": WEB01, "output_path": str(export_root / "w")}
    )
    assert Job.objects.get(id=answer["job_ids"][0]).origin == "api"


def test_a_wrong_token_is_refused_and_never_shown(daemon):
    with pytest.raises(CLIError) as caught:
        RemoteBackend(daemon.url, "not-the-token-0123456789").daemon_status()
    assert str(caught.value) == TOKEN_REFUSED == "the daemon refused the API token (set HYPERSDK_API_TOKEN)"


def test_a_url_that_is_no_daemon_says_so(daemon):
    with pytest.raises(CLIError, match="not JSON \\(is this a HyperSDK daemon\\?\\)"):
        RemoteBackend(f"{daemon.url}/elsewhere", daemon.token).daemon_status()


def test_remote_status_reports_the_daemon(daemon):
    status = RemoteBackend(daemon.url, daemon.token).daemon_status()
    assert status["health"] == "ok" and status["uptime_seconds"] > 0


# ---- a hostile or broken daemon: one-line errors, bounded memory and time ---------------------


class FakeDaemon:
    """An HTTP server answering every request with ``answer(handler)``; its URL."""

    def __init__(self, answer) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                try:
                    answer(self)
                except (BrokenPipeError, ConnectionResetError):  # the CLI gave up, as it should
                    pass

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_daemon():
    started = []

    def start(answer) -> str:
        started.append(FakeDaemon(answer))
        return started[-1].url

    yield start
    for server in started:
        server.close()


def json_answer(body, status: int = 200):
    def answer(handler) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return answer


def test_an_endless_answer_stops_at_the_size_limit(fake_daemon):
    def endless(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(b'{"health": "')
        while True:
            handler.wfile.write(b"x" * 65536)

    remote = RemoteBackend(fake_daemon(endless), "t", max_body=2**20)
    with pytest.raises(CLIError, match="answered more than 1 MiB"):
        remote.daemon_status()


def test_a_daemon_dripping_its_answer_stops_at_the_deadline(fake_daemon):
    def drip(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        while True:
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.05)  # the hostile daemon's pace, each byte well within the read timeout

    remote = RemoteBackend(fake_daemon(drip), "t", deadline=0.5)
    with pytest.raises(CLIError, match="did not finish its answer within 0.5 s"):
        remote.daemon_status()


def test_a_daemon_dripping_its_headers_stops_at_the_deadline(fake_daemon):
    def drip_headers(handler) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 10_000:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.05)  # the hostile daemon's pace, each byte well within the read timeout

    remote = RemoteBackend(fake_daemon(drip_headers), "t", deadline=0.5)
    with pytest.raises(CLIError, match="did not finish its answer within 0.5 s"):
        remote.daemon_status()


def endless_pages(handler) -> None:
    # Every page announces one more: `next` never ends.
    json_answer({"count": 3, "next": "http://x/?page=2", "results": [{"id": f"job-{time.monotonic_ns()}"}]})(
        handler
    )


@pytest.mark.parametrize(
    "listing",
    [
        lambda remote: remote.query_jobs(),
        lambda remote: remote.query_jobs(limit=5),
        lambda remote: remote.list_schedules(page=None),
        lambda remote: remote.list_webhooks(page=None),
    ],
)
def test_pages_whose_next_never_ends_stop_with_one_line(fake_daemon, listing):
    remote = RemoteBackend(fake_daemon(endless_pages), "t")
    with pytest.raises(CLIError, match="keeps announcing more pages than its 3 rows fill"):
        listing(remote)


@pytest.mark.parametrize("body", [[], None, {"results": "x"}, {"count": 1, "results": [1]}, "text"])
def test_a_wrong_json_shape_is_an_unexpected_answer(fake_daemon, body):
    remote = RemoteBackend(fake_daemon(json_answer(body)), "t")
    with pytest.raises(
        CLIError, match="^unexpected answer from the daemon at http://127.0.0.1:\\d+/jobs/query$"
    ):
        remote.query_jobs()


@pytest.mark.parametrize("job_id", ["é/../x", "job-" + "x" * 20_000, "j" * 70_000, "job 1", ""])
def test_remote_odd_job_ids_are_not_found_as_locally(fake_daemon, job_id):
    remote = RemoteBackend(fake_daemon(json_answer({"detail": "unused"}, 404)), "t")
    for ask in (remote.get_job, remote.cancel_job, remote.job_logs):
        with pytest.raises(CLIError, match="^job not found: "):
            ask(job_id)


def test_remote_job_not_found_reads_as_locally_for_a_slash(daemon, db):
    from cli.backends.local import LocalBackend

    for backend in (LocalBackend(), RemoteBackend(daemon.url, daemon.token)):
        with pytest.raises(CLIError, match="^job not found: é/../x$"):
            backend.get_job("é/../x")


def test_a_password_in_the_daemon_url_is_never_shown():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CLIError) as caught:
        RemoteBackend(f"http://admin:S3cretPW@127.0.0.1:{port}", "t").daemon_status()
    assert "S3cretPW" not in str(caught.value)
    assert str(caught.value) == f"cannot reach daemon at http://***@127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc\nSECRET", "the API token contains a line break or non-printable character"),
        ("abc\x1bSECRET", "the API token contains a line break or non-printable character"),
        ("abcSECRETé", "the API token contains a non-ASCII character"),
    ],
)
def test_an_unusable_token_is_named_without_showing_it(token, message):
    with pytest.raises(CLIError) as caught:
        RemoteBackend("http://127.0.0.1:1", token)
    assert str(caught.value).startswith(message) and "SECRET" not in str(caught.value)


def test_server_error_text_is_shown_as_one_printable_line(fake_daemon):
    remote = RemoteBackend(fake_daemon(json_answer({"detail": "bad\x1b[2J\nthing\r\x07"}, 400)), "t")
    with pytest.raises(CLIError) as caught:
        remote.daemon_status()
    assert str(caught.value) == "bad [2J thing"


def remote_cli(program: str, url: str, *args: str):
    from tests.cli_runner import run_in_process

    env = {name: value for name, value in os.environ.items() if not name.startswith("HYPERSDK_")}
    return run_in_process(program, "--daemon-url", url, *args, env=env)


def raw_answer(body: bytes, status: int = 200):
    def answer(handler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


ODD_LISTING = json.dumps({"count": 1, "next": None, "results": [{"id": "abc"}]}).encode()


@pytest.mark.parametrize(
    ("program", "args", "body", "status"),
    [
        ("hyperctl", ["query"], ODD_LISTING, 200),
        ("hyperctl", ["schedules", "list"], ODD_LISTING, 200),
        ("hyperctl", ["webhooks", "list"], ODD_LISTING, 200),
        ("hyperctl", ["status"], b'{"id": "abc"}', 200),
        ("hyperctl", ["query", "-id", "abc"], b'{"id": "abc"}', 200),
        ("hyperctl", ["cancel", "abc"], b'{"id": "abc"}', 200),
        ("hyperctl", ["logs", "abc"], b'{"id": "abc"}', 200),
        ("hyperctl", ["watch", "abc"], b'{"id": "abc", "status": null}', 200),
        ("hyperctl", ["watch", "abc"], b'{"id": "abc", "status": "sleeping"}', 200),
        ("hyperexport", ["--daemon-list", "all"], ODD_LISTING, 200),
        ("hyperctl", ["query"], b'{"count": 1' + b"0" * 400 + b', "next": null, "results": []}', 200),
        ("hyperctl", ["status"], b'{"errors": [{"foo": 1}]}', 400),
        ("hyperctl", ["status"], b'{"errors": "abc"}', 400),
        ("hyperctl", ["status"], b"[" * 200_000, 200),
    ],
)
def test_an_answer_the_cli_cannot_read_is_one_line_not_a_traceback(fake_daemon, program, args, body, status):
    url = fake_daemon(raw_answer(body, status))
    result = remote_cli(program, url, *args)
    assert result.returncode == 1
    assert result.stderr == f"error: unexpected answer from the daemon at {url}\n"


@pytest.mark.parametrize("ref", [".", "..", "a/b"])
def test_dot_ids_and_slashes_name_no_job_schedule_or_webhook(fake_daemon, ref):
    asked = []

    def answer(handler) -> None:
        asked.append(handler.path)
        json_answer({"count": 0, "next": None, "results": []})(handler)

    remote = RemoteBackend(fake_daemon(answer), "t")
    for what, ask in [
        ("job", remote.get_job),
        ("job", remote.cancel_job),
        ("job", remote.job_logs),
        ("schedule", remote.get_schedule),
        ("schedule", remote.delete_schedule),
        ("schedule", remote.trigger_schedule),
        ("webhook", remote.delete_webhook),
        ("webhook", remote.test_webhook),
        ("webhook", remote.webhook_deliveries),
    ]:
        with pytest.raises(CLIError, match=f"^{what} not found: {re.escape(ref)}$"):
            ask(ref)
    assert asked == []


@pytest.mark.parametrize("args", [["webhooks", "delete", "."], ["webhooks", "test", "."]])
def test_webhook_dot_is_not_found_rather_than_the_list(fake_daemon, args):
    url = fake_daemon(json_answer({"count": 1, "next": None, "results": [{"id": "w1", "url": "http://x"}]}))
    result = remote_cli("hyperctl", url, *args)
    assert (result.returncode, result.stderr) == (1, "error: webhook not found: .\n")


@pytest.mark.parametrize(
    "url", ["http://admin:hunter2@host:notaport", "ftp://admin:hunter2@host/", "http://admin:hunter2@"]
)
def test_an_invalid_daemon_url_never_shows_its_password(url):
    with pytest.raises(UsageError) as raised:
        RemoteBackend(url, "t")
    assert "hunter2" not in str(raised.value)
    assert "***@" in str(raised.value)


def test_an_invalid_daemon_url_from_the_environment_never_shows_its_password(monkeypatch):
    monkeypatch.setenv("HYPERSDK_DAEMON_URL", "http://admin:hunter2@host:notaport")
    with pytest.raises(UsageError) as raised:
        open_backend()
    assert "hunter2" not in str(raised.value)


def test_control_characters_from_the_daemon_are_escaped_in_tables_and_quiet_lines():
    job = {
        "id": "job-\x1b[31mred",
        "status": "pending",
        "vm_path": "/dc/vm/a\nb\x07",
        "output_path": "/o\x9b",
        "created_at": None,
        "progress": {"percent": 0},
    }
    lines = render.job_table([job]) + render.job_tsv([job])
    assert not any(re.search(r"[\x00-\x1f\x7f-\x9f]", line.replace("\t", " ")) for line in lines)
    assert render.job_tsv([job]) == ["job-\\x1b[31mred\tpending\t/dc/vm/a\\nb\\x07"]
    assert "job-\\x1b[31mred" in lines[1]


def test_a_token_file_that_is_not_utf8_is_one_line_without_its_bytes(tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_bytes(b"tok-\xff\xfe-secret")
    with pytest.raises(CLIError, match="is not UTF-8 text: it holds no API token$") as raised:
        read_token(str(token_file))
    assert "secret" not in str(raised.value)
    monkeypatch.setenv("HYPERSDK_API_TOKEN_FILE", str(token_file))
    with pytest.raises(CLIError, match="^HYPERSDK_API_TOKEN_FILE .* is not UTF-8 text"):
        read_token(None)


def test_an_endless_token_file_is_refused_after_4_kib(monkeypatch):
    monkeypatch.setenv("HYPERSDK_API_TOKEN_FILE", "/dev/zero")
    with pytest.raises(CLIError, match="^HYPERSDK_API_TOKEN_FILE /dev/zero is longer than 4096 bytes"):
        read_token(None)
    with pytest.raises(CLIError, match="^token file /dev/zero is longer than 4096 bytes"):
        read_token("/dev/zero")


def test_completion_offers_no_id_starting_with_a_dash_or_longer_than_the_apis(fake_daemon):
    ids = ["job-1", "-rf", "--daemon-url=x", "j" * 33, "j" * 32]
    rows = [{"id": job_id} for job_id in ids]
    url = fake_daemon(json_answer({"count": len(rows), "next": None, "results": rows}))
    result = remote_cli("hyperctl", url, "query", "--complete-ids=")
    assert (result.returncode, result.stdout.split()) == (0, ["job-1", "j" * 32])


@pytest.mark.parametrize("status", [None, "sleeping"])
def test_watch_of_a_job_whose_status_is_unknown_is_an_unexpected_answer(fake_daemon, status):
    job = {"id": "job-1", "status": status, "progress": {"percent": 0, "phase": "", "current_file": ""}}
    remote = RemoteBackend(fake_daemon(json_answer(job)), "t")

    def sleep(seconds: float) -> None:
        raise AssertionError("it waited for a status no job has")

    terminal = Terminal(io.StringIO(), io.StringIO())
    with pytest.raises(CLIError, match="^unexpected answer from the daemon at "), remote.reading_answers():
        watch_job(remote, "job-1", terminal, sleep=sleep)
