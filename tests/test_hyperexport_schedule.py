"""`hyperexport --daemon-schedule "name:cron"` as the guide types it, remote (a live daemon) and
local (the daemon's database)."""

from __future__ import annotations

import subprocess

import pytest

from schedules.models import Schedule
from tests.cli_runner import run_in_process, run_process
from tests.conftest import bare_env

pytestmark = [pytest.mark.django_db(transaction=True)]


def hyperexport(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """In this process: the output formats are the command's (tests/cli_runner.py says why)."""
    return run_in_process("hyperexport", *args, env=env)


def test_the_guides_examples_create_schedules(cli_env):
    daily = hyperexport(
        "--daemon-schedule", "daily-backup:0 3 * * *", "-vm", "/dc/vm/prod/web01", env=cli_env
    )
    weekly = hyperexport("--daemon-schedule", "weekly:0 0 * * 0", "-vm", "/dc/vm/prod/db01", env=cli_env)
    assert (daily.returncode, daily.stderr, weekly.returncode, weekly.stderr) == (0, "", 0, "")

    schedules = {schedule.name: schedule for schedule in Schedule.objects.all()}
    assert sorted(schedules) == ["daily-backup", "weekly"]
    first, second = schedules["daily-backup"], schedules["weekly"]
    assert (first.cron, first.job_template["vm_path"], first.enabled) == (
        "0 3 * * *",
        "/dc/vm/prod/web01",
        True,
    )
    assert (second.cron, second.job_template["vm_path"]) == ("0 0 * * 0", "/dc/vm/prod/db01")
    assert daily.stdout == (
        f"created schedule {first.id} (daily-backup): 0 3 * * * — next run {first.next_run_at:%Y-%m-%d} 03:00+0000 UTC\n"
    )


def test_export_flags_reach_the_job_template(cli_env, export_root):
    done = hyperexport(
        "-daemon-schedule", "nightly:30 1 * * 1-5", "-vm", "/dc/vm/prod/web01", "-output", str(export_root / "web01"),
        "-format", "ova", "-compress", "-manifest", "-verify", "-quiet",
        env=cli_env,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    schedule = Schedule.objects.get(id=done.stdout.strip())  # -quiet: only the id
    assert schedule.cron == "30 1 * * 1-5"
    template = schedule.job_template
    assert (template["output_path"], template["format"], template["compress"]) == (
        str(export_root / "web01"),
        "ova",
        True,
    )
    assert template["manifest"] and template["verify"] and not template["convert"]


def test_only_the_first_colon_splits_name_from_cron(cli_env):
    done = hyperexport(
        "--daemon-schedule", " spaced : */15 * * * * ", "-vm", "/dc/vm/prod/web01", env=cli_env
    )
    assert done.returncode == 0, done.stderr
    assert Schedule.objects.get().name == "spaced" and Schedule.objects.get().cron == "*/15 * * * *"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nightly:0 25 * * *", "error: cron: invalid cron '0 25 * * *': Bad hour\n"),
        (
            "nightly:* * *",
            "error: cron: invalid cron '* * *': want 5 fields (minute hour day month weekday) or @daily\n",
        ),
        ("nightly:61 * * * *", "error: cron: invalid cron '61 * * * *': Bad minute\n"),
    ],
)
def test_an_invalid_cron_is_one_error_line_and_nothing_is_created(cli_env, value, message):
    done = hyperexport("--daemon-schedule", value, "-vm", "/dc/vm/prod/web01", env=cli_env)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", message)
    assert not Schedule.objects.exists()


def test_a_duplicate_name_is_refused(cli_env):
    first = hyperexport("--daemon-schedule", "nightly:0 2 * * *", "-vm", "/dc/vm/prod/web01", env=cli_env)
    assert first.returncode == 0, first.stderr
    again = hyperexport("--daemon-schedule", "nightly:0 4 * * *", "-vm", "/dc/vm/prod/db01", env=cli_env)
    assert (again.returncode, again.stderr) == (1, "error: name: a schedule named 'nightly' already exists\n")
    assert list(Schedule.objects.values_list("cron", flat=True)) == ["0 2 * * *"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--daemon-schedule", "daily-backup:0 3 * * *"], "the following arguments are required: -vm"),
        (
            ["--daemon-schedule", "daily-backup", "-vm", "/dc/vm/a/b"],
            'give "name:cron", e.g. "daily-backup:0 3 * * *"',
        ),
        (["--daemon-schedule", ":0 3 * * *", "-vm", "/dc/vm/a/b"], 'give "name:cron"'),
        (["--daemon-schedule", "x:0 3 * * *", "--daemon-status"], "not allowed with argument"),
        (
            ["--daemon-schedule", "x:0 3 * * *", "-vm", "/dc/vm/a/b", "--watch"],
            "--watch follows a submitted job",
        ),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, message):
    done = run_process(
        "hyperexport", *args, env=bare_env(tmp_path) | {"HYPERSDK_DAEMON_URL": "http://127.0.0.1:1"}
    )
    assert done.returncode == 2
    assert message in done.stderr
