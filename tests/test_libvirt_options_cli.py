"""The libvirt domain's options at the CLIs' doors: a -define URI the daemon does not allow is
its one-line error (exit 1) from every command that hands it a job, as a direct export's is its
own (exit 2); a switch missing is a usage error before any request. And a finished job's domain
in ``hyperctl query -id`` and at the end of a watch."""

from __future__ import annotations

import io
import subprocess
from datetime import datetime

import pytest

from cli import render
from cli.follow import watch_job
from cli.terminal import Terminal
from exports.models import Job
from libvirt_domain.define import ALLOWED_URIS_VARIABLE
from schedules.models import Schedule
from tests.cli_runner import run_in_process
from tests.conftest import APP01, bare_env, govc_environment
from tests.test_libvirt_options import refused

HOSTILE = ["qemu+ext:///system?command=/bin/sh", "qemu+ssh://root@attacker.example/system"]


def cli(program: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_in_process(program, *args, env=env)


@pytest.mark.vsphere
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("uri", HOSTILE)
def test_every_cli_door_refuses_a_uri_the_daemon_does_not_allow_in_one_line(cli_env, export_root, uri):
    env = {name: value for name, value in cli_env.items() if name != ALLOWED_URIS_VARIABLE}
    job = ["-vm", APP01, "-output", str(export_root / "web01"), "-convert", "-libvirt", "-define", uri]
    doors = [
        ("hyperexport", "--use-daemon", *job),
        ("hyperexport", "--daemon-schedule", "nightly:0 2 * * *", *job),
    ]
    for program, *args in doors:
        done = cli(program, *args, env=env)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", f"error: define_uri: {refused(uri)}\n")
    # A schedule never defines: hyperctl's schedule flags have no -define at all.
    done = cli("hyperctl", "schedules", "create", "nightly", "0 2 * * *", *job, env=env)
    assert done.returncode == 2 and "unrecognized arguments: -define" in done.stderr
    # A direct export says the same of the same URI, as the usage error it is there.
    direct = cli("hyperexport", *job, env=bare_env(export_root))
    assert (direct.returncode, direct.stderr) == (2, f"error: {refused(uri)}\n")
    assert not Job.objects.exists() and not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hyperexport", "--use-daemon", "-define", "qemu:///system", "-convert"], "-define needs -libvirt"),
        (["hyperexport", "--use-daemon", "-libvirt"], "-libvirt needs -convert"),
        (
            ["hyperexport", "--daemon-schedule", "n:@daily", "-network-map", "a=b"],
            "-network-map needs -libvirt",
        ),
        (["hyperctl", "schedules", "create", "n", "@daily", "-disk-bus", "sata"], "-disk-bus needs -libvirt"),
    ],
)
def test_a_switch_missing_is_a_usage_error_before_any_request(tmp_path, args, message):
    # Nothing listens at the daemon URL: a request would fail as "cannot reach daemon".
    env = bare_env(tmp_path) | {"HYPERSDK_DAEMON_URL": "http://127.0.0.1:9", "HYPERSDK_API_TOKEN": "t" * 40}
    program, *rest = args
    done = cli(program, *rest, "-vm", APP01, env=env)
    assert (done.returncode, done.stderr) == (2, f"error: {message}\n")


# ---- a finished job's domain, as the CLIs show it ----------------------------------------------


def finished_job(**plan) -> dict:
    """A completed job as the API shows it, with a domain written (and maybe defined)."""
    return {
        "id": "job-1", "status": "completed", "status_detail": "", "vm_path": "/dc/vm/prod/web 01",
        "vcenter": None, "output_path": "/exports/web 01", "options": {"convert": True, "libvirt": True},
        "progress": {"percent": 100.0, "phase": "done", "current_file": "", "bytes_done": 0,
                     "bytes_total": 0, "rate_bps": 0.0, "eta_seconds": None},
        "origin": "api", "created_at": None, "started_at": None, "finished_at": None,
        "duration_seconds": None, "worker": "", "error": "", "cancel_requested": False,
        "result": {
            "libvirt_domain": "/exports/web 01/web 01.xml",
            "conversion": {"libvirt_domain": {"name": "web-01", "defined": None, **plan}},
        },
    }  # fmt: skip


def test_a_jobs_detail_shows_its_domain_and_the_commands_to_run_next():
    assert render.job_detail(finished_job())[-3:] == [
        "Domain:   /exports/web 01/web 01.xml",
        "Next:     virsh define '/exports/web 01/web 01.xml'",
        "          virsh start web-01",
    ]


def test_a_defined_domain_is_said_defined_and_only_its_start_is_left():
    assert render.job_detail(finished_job(defined="qemu:///system"))[-2:] == [
        "Domain:   /exports/web 01/web 01.xml  (defined at qemu:///system)",
        "Next:     virsh -c qemu:///system start web-01",
    ]


class Answers:
    """A backend whose job is already finished."""

    def __init__(self, job: dict) -> None:
        self.job = job

    def get_job(self, job_id: str) -> dict:
        return self.job


def test_watching_a_job_to_its_end_says_where_its_domain_is():
    out, err = io.StringIO(), io.StringIO()
    code = watch_job(Answers(finished_job()), "job-1", Terminal(out, err), now=lambda: datetime(2026, 1, 1))
    assert code == 0
    assert out.getvalue().splitlines()[-3:] == [
        "libvirt domain: /exports/web 01/web 01.xml",
        "  next: virsh define '/exports/web 01/web 01.xml'",
        "  next: virsh start web-01",
    ]


@pytest.mark.vsphere
def test_a_direct_export_ends_with_its_domain_and_what_to_run_next(vsphere, app01_seeds, tmp_path):
    # qemu-img converts: no hyper2kvm on this PATH.
    env = bare_env(tmp_path) | govc_environment(vsphere) | {"PATH": "/usr/bin:/bin"}
    out = tmp_path / "out"
    done = cli("hyperexport", "-vm", APP01, "-output", str(out), "-convert", "-libvirt", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-4:-1] == [
        f"  libvirt domain: {out}/app01.xml",
        f"    next: virsh define {out}/app01.xml",
        "    next: virsh start app01",
    ]
    assert lines[-1].startswith(f"success: app01 exported to {out} (")
