"""`hyperexport`'s daemon modes as the guide types them: --use-daemon [--watch], --daemon-watch,
--daemon-list, --daemon-status; remote (a live daemon) and local (the daemon's database)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess

import pytest

from exports import jobs
from exports.models import Job, VCenter
from tests.cli_runner import every_export_option, run_in_process, run_process
from tests.conftest import APP01, bare_env, register_vcenter, wait_for

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

DB01 = "/dc/vm/prod/db01"
SUBMITTED = re.compile(r"^submitted (job-[A-Za-z0-9_-]+)$")


def hyperexport(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """In this process: the output formats are the command's (tests/cli_runner.py says why)."""
    return run_in_process("hyperexport", *args, env=env)


def finished(job_id: str) -> Job | None:
    job = Job.objects.get(id=job_id)
    return job if job.is_finished else None


def settle(job_id: str) -> None:
    """Leave no job behind: cancel it if it has not finished, and wait until it has."""
    try:
        jobs.cancel_job(job_id)
    except jobs.JobAlreadyFinished:
        pass
    wait_for(lambda: finished(job_id), message=f"{job_id} to finish")


def submitted_id(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    match = SUBMITTED.match(done.stdout.splitlines()[0])
    assert match, done.stdout
    return match.group(1)


def test_submit_then_daemon_watch_until_completed(request, cli_env, celery_worker, app01_seeds, export_root):
    output = export_root / "app01"
    done = hyperexport("--use-daemon", "-vm", APP01, "-output", str(output), "-format", "ova", env=cli_env)
    job_id = submitted_id(done)
    assert done.stdout == f"submitted {job_id}\n"
    job = Job.objects.get(id=job_id)
    origin = "api" if "remote" in request.node.callspec.id else "cli"
    assert (job.vm_path, job.output_path, job.options["format"], job.origin) == (
        APP01,
        str(output),
        "ova",
        origin,
    )

    watched = hyperexport("--daemon-watch", job_id, env=cli_env)
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert lines[-1] == "✅ Job completed successfully!"
    assert lines[-2].endswith("] completed - export finished")
    assert (output / "app01.ova").exists()


def test_use_daemon_with_watch_follows_the_job(cli_env, celery_worker, app01_seeds, export_root):
    done = hyperexport(
        "--use-daemon", "-vm", APP01, "-output", str(export_root / "a"), "--watch", env=cli_env
    )
    job_id = submitted_id(done)
    lines = done.stdout.splitlines()
    assert all(re.match(r"^\[\d\d:\d\d:\d\d\] ", line) for line in lines[1:-1]), lines
    assert lines[-1] == "✅ Job completed successfully!"
    assert Job.objects.get(id=job_id).status == "completed"


def test_quiet_submit_and_watch_print_only_the_job_id(
    daemon, tmp_path, celery_worker, app01_seeds, export_root
):
    done = hyperexport(
        "--use-daemon", "-vm", APP01, "-output", str(export_root / "q"), "--watch", "--quiet",
        env=bare_env(tmp_path) | daemon.env,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    job_id = done.stdout.strip()
    assert done.stdout == f"{job_id}\n"
    assert Job.objects.get(id=job_id).status == "completed"


def test_without_output_the_daemon_picks_it(daemon, tmp_path, settings):
    done = hyperexport(
        "--use-daemon", "-vm", "/dc/vm/prod/nope", "-quiet", env=bare_env(tmp_path) | daemon.env
    )
    job = Job.objects.get(id=done.stdout.strip())
    assert job.output_path == f"{settings.DATA_DIR}/exports/nope-{job.id}"
    settle(job.id)


def test_watch_without_output_exports_inside_the_roots_when_the_data_dir_is_outside(
    daemon, tmp_path, settings, celery_worker, app01_seeds, export_roots_base
):
    # The guide's `hyperexport --use-daemon -vm /dc/vm/prod/db01 --watch`, on a daemon whose
    # HYPERSDK_EXPORT_ROOTS leave out <data dir>/exports.
    settings.HYPERSDK_EXPORT_ROOTS = [str(export_roots_base)]
    done = hyperexport(
        "--use-daemon", "-vm", APP01, "--watch", "--quiet", env=bare_env(tmp_path) | daemon.env
    )
    assert (done.returncode, done.stderr) == (0, "")
    job = Job.objects.get(id=done.stdout.strip())
    assert (job.status, job.output_path) == ("completed", str(export_roots_base / f"app01-{job.id}"))
    assert (export_roots_base / f"app01-{job.id}" / "app01.ovf").is_file()


def test_export_flags_reach_the_job(cli_env, export_root, settings):
    # The converter must be one the daemon is configured with: in-process (remote) or by env (local).
    settings.HYPERSDK_HYPER2KVM_PATHS = ["/opt/h2k/bin/hyper2kvm"]
    done = hyperexport(
        "--use-daemon", "-vm", APP01, "-output", str(export_root / "f"), "-format", "ova", "-compress",
        "-manifest", "-manifest-target", "raw", "-convert", "-verify", "-parallel", "2", "-power-off",
        "-hyper2kvm-path", "/opt/h2k/bin/hyper2kvm", "-conversion-timeout", "90m", "-overwrite", "-quiet",
        env=cli_env | {"HYPERSDK_HYPER2KVM_PATHS": "/opt/h2k/bin/hyper2kvm"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = Job.objects.get(id=done.stdout.strip())
    assert job.options == every_export_option("/opt/h2k/bin/hyper2kvm", conversion_timeout=90)
    settle(job.id)


def test_daemon_list_quiet_is_exactly_id_status_vm(
    cli_env, celery_worker, app01_seeds, slow_vsphere, export_root
):
    completed = jobs.submit_jobs([{"vm_path": APP01, "output_path": str(export_root / "app01")}]).job_ids[0]
    wait_for(lambda: finished(completed), message="the export to finish")
    if not VCenter.objects.filter(name="slow").exists():
        register_vcenter(slow_vsphere[0], "slow")
    running = jobs.submit_jobs(
        [{"vm_path": DB01, "output_path": str(export_root / "db01"), "vcenter": "slow"}]
    ).job_ids[0]
    wait_for(lambda: Job.objects.filter(id=running, bytes_done__gt=0).exists(), message="bytes to move")
    # Freeze the worker: the slow export stays "running" however long the listings take.
    os.killpg(celery_worker.process.pid, signal.SIGSTOP)
    try:
        listed = hyperexport("--daemon-list", "running", "--quiet", env=cli_env)
        assert (listed.returncode, listed.stdout, listed.stderr) == (0, f"{running}\trunning\t{DB01}\n", "")
        listed = hyperexport("-daemon-list", "completed", "-quiet", env=cli_env)
        assert listed.stdout == f"{completed}\tcompleted\t{APP01}\n"

        table = hyperexport("--daemon-list", "all", env=cli_env)
        header, *rows = table.stdout.splitlines()
        assert header.split() == ["ID", "STATUS", "PROGRESS", "VM", "OUTPUT", "CREATED"]
        assert [row.split()[:2] for row in rows] == [[running, "running"], [completed, "completed"]]
        assert hyperexport("--daemon-list", "failed", env=cli_env).stdout == "no failed jobs\n"
    finally:
        os.killpg(celery_worker.process.pid, signal.SIGCONT)
        settle(running)


def test_daemon_status_is_human_or_json(cli_env, celery_worker):
    done = hyperexport("--daemon-status", env=cli_env)
    assert done.returncode == 0, done.stderr
    labels = [line.split(":", 1)[0] for line in done.stdout.splitlines() if not line.startswith(" ")]
    assert labels[:5] == ["Daemon", "Database", "Workers", "Jobs", "Active jobs"]
    assert "System" in labels
    status = json.loads(hyperexport("--daemon-status", "--quiet", env=cli_env).stdout)
    assert status["health"] == "ok" and set(status["jobs"]) == set(Job.Status.values)


def test_a_refused_job_is_one_error_line(cli_env):
    done = hyperexport("--use-daemon", "-vm", APP01, "-output", "/not/an/export/root", env=cli_env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: output_path must be inside one of the export roots: ")
    assert len(done.stderr.splitlines()) == 1
    assert not Job.objects.exists()


def test_daemon_status_of_an_unreachable_daemon(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once we leave: nothing listens there
    done = run_process(
        "hyperexport", "--daemon-status", "--daemon-url", f"http://127.0.0.1:{port}", env=bare_env(tmp_path)
    )
    assert done.returncode == 1
    assert done.stderr == f"error: cannot reach daemon at http://127.0.0.1:{port}: connection refused\n"


def test_a_wrong_token_is_refused_and_never_printed(daemon, tmp_path):
    env = bare_env(tmp_path) | daemon.env | {"HYPERSDK_API_TOKEN": "wrong-token-0123456789abcdef"}
    done = hyperexport("--daemon-list", "all", env=env)
    assert done.returncode == 1
    assert done.stderr == "error: the daemon refused the API token (set HYPERSDK_API_TOKEN)\n"
    assert "wrong-token" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--use-daemon"], "the following arguments are required: -vm"),
        (["-vm", APP01, "--watch"], "--watch follows a submitted job: give it with --use-daemon"),
        (["--daemon-list", "bogus"], "invalid choice: 'bogus'"),
        (["--daemon-status", "--daemon-list", "all"], "not allowed with argument"),
        (["--use-daemon", "-vm", APP01, "-dry-run"], "-dry-run: direct exports only"),
        (["-vm", APP01, "--daemon-url", "http://h:1"], "--daemon-url and --token-file go with --use-daemon"),
        (
            ["--use-daemon", "-vm", APP01, "-output", "relative/dir", "--daemon-url", "http://127.0.0.1:1"],
            "error: -output relative/dir: give an absolute path on the daemon's machine",
        ),
        (["--daemon-status", "--daemon-url", "localhost:8080"], "error: invalid daemon URL 'localhost:8080'"),
    ],
)
def test_usage_errors_exit_2(args, message, tmp_path):
    done = hyperexport(*args, env=bare_env(tmp_path))
    assert done.returncode == 2
    assert message in done.stderr
