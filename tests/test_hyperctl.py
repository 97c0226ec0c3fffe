"""`hyperctl` as an operator types it: against a live daemon (remote) and on the daemon's own
database (local), with a real Celery worker exporting from the vSphere simulator."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from exports import jobs
from exports.models import Job, JobLog, VCenter
from tests.cli_runner import run_in_process
from tests.conftest import APP01, bare_env, register_vcenter, wait_for

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

BIN = Path(sys.executable).parent
DB01 = "/dc/vm/prod/db01"
WATCH_LINE = re.compile(
    r"^\[\d\d:\d\d:\d\d\] (pending - waiting for a worker|running \d+\.\d% - .+|completed - export finished)$"
)


def run(program: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / program), *args], env=env, capture_output=True, text=True, timeout=600)


def hyperctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """In this process: the output formats are the command's (tests/cli_runner.py says why)."""
    return run_in_process("hyperctl", *args, env=env)


def submit(vm: str, output: Path, **options) -> str:
    return jobs.submit_jobs([{"vm_path": vm, "output_path": str(output), **options}]).job_ids[0]


def finished(job_id: str) -> Job | None:
    job = Job.objects.get(id=job_id)
    return job if job.is_finished else None


def running_slow_job(slow_vsphere, export_root) -> str:
    """db01 on the slow host, moving bytes: it stays running for seconds."""
    sim, _ = slow_vsphere
    if not VCenter.objects.filter(name="slow").exists():
        register_vcenter(sim, "slow")
    job_id = submit(DB01, export_root / "db01", vcenter="slow")
    wait_for(lambda: Job.objects.filter(id=job_id, bytes_done__gt=0).exists(), message="bytes to move")
    return job_id


@contextmanager
def frozen(worker):
    """The worker stopped (SIGSTOP): its running export stays "running" however long a step takes."""
    os.killpg(worker.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(worker.process.pid, signal.SIGCONT)


def test_watch_follows_a_job_until_it_completes(cli_env, celery_worker, app01_seeds, export_root):
    job_id = submit(APP01, export_root / "app01")
    done = hyperctl("watch", job_id, env=cli_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "✅ Job completed successfully!"
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] completed - export finished", lines[-2]), lines
    assert all(WATCH_LINE.match(line) for line in lines[:-1]), lines
    said = [line.split("] ", 1)[1] for line in lines[:-1]]
    assert all(a != b for a, b in zip(said, said[1:], strict=False)), "a line only when something changes"


def test_query_by_status_and_by_id(cli_env, celery_worker, app01_seeds, export_root):
    # One after the other: two claims at once can hit "database is locked" on SQLite.
    completed = submit(APP01, export_root / "app01")
    wait_for(lambda: finished(completed), message="the export to finish")
    failed = submit("/dc/vm/prod/nope", export_root / "nope")
    wait_for(lambda: finished(failed), message="the export to fail")

    listed = hyperctl("query", "-status", "failed", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "PROGRESS", "VM", "OUTPUT", "CREATED"]
    assert [row.split()[:2] for row in rows] == [[failed, "failed"]]

    quiet = hyperctl("query", "--status", "completed", "--quiet", env=cli_env)
    assert quiet.stdout == f"{completed}\tcompleted\t{APP01}\n"

    detail = hyperctl("query", "-id", failed, env=cli_env)
    assert detail.returncode == 0, detail.stderr
    assert "Status:   failed" in detail.stdout.splitlines()
    assert (
        "Error:    VM not found: /dc/vm/prod/nope (give the inventory path, e.g. /dc/vm/folder/name)"
        in detail.stdout.splitlines()
    )
    as_json = json.loads(hyperctl("query", "-id", completed, "-json", env=cli_env).stdout)
    assert as_json["status"] == "completed" and as_json["result"]["files"]


def test_query_of_an_unknown_job_is_one_error_line(cli_env):
    done = hyperctl("query", "-id", "job-nope", env=cli_env)
    assert (done.returncode, done.stderr) == (1, "error: job not found: job-nope\n")


def test_logs_follow_until_the_job_ends_then_whole_and_tail(cli_env, celery_worker, app01_seeds, export_root):
    job_id = submit(APP01, export_root / "app01")
    followed = hyperctl("logs", "-f", job_id, env=cli_env)
    assert followed.returncode == 0, followed.stderr
    assert finished(job_id).status == "completed"
    messages = list(JobLog.objects.filter(job_id=job_id).order_by("id").values_list("message", flat=True))
    lines = followed.stdout.splitlines()
    assert [line.split(maxsplit=3)[-1] for line in lines] == messages
    assert messages[-1] == "completed"

    assert hyperctl("logs", job_id, env=cli_env).stdout.splitlines() == lines
    assert hyperctl("logs", "-tail", "2", job_id, env=cli_env).stdout.splitlines() == lines[-2:]
    assert hyperctl("logs", job_id, "--tail", "1", env=cli_env).stdout.splitlines() == lines[-1:]


def test_cancel_stops_a_running_export(cli_env, celery_worker, slow_vsphere, export_root):
    job_id = running_slow_job(slow_vsphere, export_root)
    with frozen(celery_worker):
        cancelled = hyperctl("cancel", job_id, env=cli_env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"cancel requested for {job_id}: its worker stops it within seconds\n"

    watched = hyperctl("watch", job_id, env=cli_env)
    assert watched.returncode == 1
    *_, last_state, outcome = watched.stdout.splitlines()
    assert outcome == "⚠️ Job cancelled"
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] cancelled - export cancelled", last_state), last_state
    assert Job.objects.get(id=job_id).status == "cancelled"
    assert not (export_root / "db01").exists()

    again = hyperctl("cancel", job_id, env=cli_env)
    assert (again.returncode, again.stderr) == (1, f"error: job {job_id} already cancelled\n")


def test_ctrl_c_stops_watching_and_the_job_runs_on(
    daemon, tmp_path, celery_worker, slow_vsphere, export_root
):
    job_id = running_slow_job(slow_vsphere, export_root)
    with frozen(celery_worker):
        watcher = subprocess.Popen(
            [str(BIN / "hyperctl"), "watch", job_id],
            env=bare_env(tmp_path) | daemon.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = watcher.stdout.readline()
        assert " running " in first, first
        watcher.send_signal(signal.SIGINT)
        _, stderr = watcher.communicate(timeout=120)
        assert watcher.returncode == 130
        assert stderr == f"stopped watching; job {job_id} keeps running\n"
        assert Job.objects.get(id=job_id).status == "running"
    jobs.cancel_job(job_id)
    wait_for(lambda: finished(job_id), message="the job to stop")


def status_naming(worker_name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess | None:
    """``hyperctl status`` once it names the worker: the daemon pings workers for half a second,
    and a busy one may answer a ping late."""
    done = hyperctl("status", *args, env=env)
    assert done.returncode == 0, done.stderr
    return done if worker_name in done.stdout else None


def test_status_reports_health_workers_and_jobs(cli_env, celery_worker):
    done = wait_for(
        lambda: status_naming(celery_worker.name, env=cli_env), message="the worker in the status"
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Daemon:       ok, version ")
    assert any(line.startswith("Workers:") and celery_worker.name in line for line in lines), lines
    assert any(line.startswith("Jobs:") for line in lines)
    done = wait_for(
        lambda: status_naming(celery_worker.name, "-json", env=cli_env), message="the worker in JSON"
    )
    status = json.loads(done.stdout)
    assert status["health"] == "ok" and any(celery_worker.name in worker for worker in status["workers"])


def test_an_unreachable_daemon_is_one_error_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once we leave: nothing listens there
    url = f"http://127.0.0.1:{port}"
    done = run("hyperctl", "--daemon-url", url, "query", "-status", "failed", env=bare_env(tmp_path))
    assert done.returncode == 1
    assert done.stderr == f"error: cannot reach daemon at http://127.0.0.1:{port}: connection refused\n"


def test_a_wrong_token_is_refused_and_never_printed(daemon, tmp_path):
    env = bare_env(tmp_path) | daemon.env | {"HYPERSDK_API_TOKEN": "wrong-token-0123456789abcdef"}
    done = hyperctl("status", env=env)
    assert done.returncode == 1
    assert done.stderr == "error: the daemon refused the API token (set HYPERSDK_API_TOKEN)\n"
    assert "wrong-token" not in done.stdout + done.stderr


def test_the_token_can_come_from_a_file(daemon, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(daemon.token + "\n")
    env = bare_env(tmp_path) | {"HYPERSDK_DAEMON_URL": daemon.url}
    done = hyperctl("query", "--token-file", str(token_file), env=env)
    assert (done.returncode, done.stdout) == (0, "no jobs\n"), done.stderr


def test_a_subcommand_is_required(tmp_path):
    done = run("hyperctl", env=bare_env(tmp_path))  # the console script itself
    assert done.returncode == 2
    assert "the following arguments are required: COMMAND" in done.stderr
