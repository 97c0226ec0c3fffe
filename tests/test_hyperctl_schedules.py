"""`hyperctl schedules` as the guide types it: against a live daemon (remote) and on the daemon's
own database (local); a triggered schedule's job exported by a real worker from the simulator."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from cli.backends import CLIError, LocalBackend, RemoteBackend
from exports.models import Job
from schedules.models import Schedule, ScheduleRun
from tests.cli_runner import run_in_process, run_process
from tests.conftest import APP01, bare_env, wait_for

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

CREATED = re.compile(
    r"^created schedule (sched-[A-Za-z0-9_-]+) \((.+)\): (.+) — (next run .+|disabled, no next run)$"
)
HEADER = ["ID", "NAME", "SCHEDULE", "ENABLED", "LAST RUN", "NEXT RUN"]


def hyperctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """In this process: the output formats are the command's (tests/cli_runner.py says why)."""
    return run_in_process("hyperctl", *args, env=env)


def created(done: subprocess.CompletedProcess) -> Schedule:
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    match = CREATED.match(done.stdout.rstrip("\n"))
    assert match and done.stdout.count("\n") == 1, done.stdout
    return Schedule.objects.get(id=match.group(1))


def table(done: subprocess.CompletedProcess) -> dict[str, list[str]]:
    """``schedules list`` as {name: [id, schedule, enabled, last run, next run]}."""
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    starts = [header.index(column) for column in HEADER]
    assert starts == sorted(starts), header
    cells = [
        [row[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)]
        for row in rows
    ]
    return {cell[1]: [cell[0], *cell[2:]] for cell in cells}


def test_example_1_creates_the_daily_backup_and_the_weekly_archive(cli_env):
    backups_existed = Path("/backups").exists()
    daily = created(
        hyperctl(
            "schedules", "create", "prod-backup", "0 2 * * *",
            "-vm", "/dc/vm/prod/db01",
            "-output", "/backups/db01",
            env=cli_env,
        )
    )  # fmt: skip
    weekly = created(
        hyperctl(
            "schedules", "create", "weekly-archive", "0 0 * * 0",
            "-vm", "/dc/vm/prod/web01",
            "-output", "/archives/web01",
            env=cli_env,
        )
    )  # fmt: skip
    assert (daily.name, daily.cron, daily.timezone, daily.enabled) == (
        "prod-backup",
        "0 2 * * *",
        "UTC",
        True,
    )
    assert (daily.job_template["vm_path"], daily.job_template["output_path"]) == (
        "/dc/vm/prod/db01",
        "/backups/db01",
    )
    assert (weekly.cron, weekly.job_template["vm_path"], weekly.job_template["output_path"]) == (
        "0 0 * * 0",
        "/dc/vm/prod/web01",
        "/archives/web01",
    )
    # A schedule is a promise: nothing is written until it runs.
    assert Path("/backups").exists() == backups_existed and not Path("/backups/db01").exists()


def test_create_prints_the_schedule_and_its_next_run_in_its_zone(cli_env):
    done = hyperctl(
        "schedules", "create", "daily-backup", "0 2 * * *", "-vm", "/dc/vm/prod/web01", env=cli_env
    )
    schedule = created(done)
    next_run = schedule.next_run_at
    assert done.stdout == (
        f"created schedule {schedule.id} (daily-backup): 0 2 * * * — next run {next_run:%Y-%m-%d} 02:00+0000 UTC\n"
    )
    paris = hyperctl(
        "schedules", "create", "paris", "30 6 * * *", "-vm", "/dc/vm/prod/web01", "--timezone", "Europe/Paris",
        env=cli_env,
    )  # fmt: skip
    assert created(paris).timezone == "Europe/Paris"
    assert re.search(r" 06:30\+0[12]00 Europe/Paris\n$", paris.stdout), paris.stdout


def test_the_guides_examples_are_listed_with_their_cron_read_out(cli_env, export_root):
    for args in [
        ["daily-backup", "0 2 * * *", "-vm", "/dc/vm/prod/web01", "-output", "/backups/web01"],
        ["weekly-backup", "0 0 * * 0", "-vm", "/dc/vm/prod/db01"],
        ["business-hours", "0 9-17 * * 1-5", "-vm", "/dc/vm/dev/app01"],
    ]:
        created(hyperctl("schedules", "create", *args, env=cli_env))

    rows = table(hyperctl("schedules", "list", env=cli_env))
    assert list(rows) == ["business-hours", "daily-backup", "weekly-backup"]
    daily = Schedule.objects.get(name="daily-backup")
    assert rows["daily-backup"] == [
        daily.id,
        "0 2 * * *  (At 02:00 AM)",
        "yes",
        "-",
        f"{daily.next_run_at:%Y-%m-%d} 02:00+0000 UTC",
    ]
    assert rows["weekly-backup"][1] == "0 0 * * 0  (At 12:00 AM, only on Sunday)"
    assert rows["business-hours"][1] == (
        "0 9-17 * * 1-5  (Between 09:00 AM and 05:59 PM, Monday through Friday)"
    )


def test_list_quiet_is_id_name_cron_enabled_and_json_is_the_apis(cli_env):
    first = created(
        hyperctl("schedules", "create", "a-first", "@daily", "-vm", "/dc/vm/prod/web01", env=cli_env)
    )
    second = created(
        hyperctl(
            "schedules",
            "create",
            "b-second",
            "*/5 * * * *",
            "-vm",
            "/dc/vm/prod/db01",
            "-disabled",
            env=cli_env,
        )
    )
    quiet = hyperctl("schedules", "list", "-quiet", env=cli_env)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert (
        quiet.stdout == f"{first.id}\ta-first\t0 0 * * *\ttrue\n{second.id}\tb-second\t*/5 * * * *\tfalse\n"
    )
    assert hyperctl("schedules", "list", "--quiet", env=cli_env).stdout == quiet.stdout

    listed = json.loads(hyperctl("schedules", "list", "--json", env=cli_env).stdout)
    assert [(item["id"], item["enabled"], item["next_run_at"] is None) for item in listed] == [
        (first.id, True, False),
        (second.id, False, True),
    ]
    assert listed[0]["cron_description"] == "At 12:00 AM" and listed[0]["vm_path"] == "/dc/vm/prod/web01"


def test_no_schedules_says_so(cli_env):
    done = hyperctl("schedules", "list", env=cli_env)
    assert (done.returncode, done.stdout) == (0, "no schedules\n"), done.stderr


def test_every_option_reaches_the_schedule(cli_env, export_root):
    schedule = created(
        hyperctl(
            "schedules", "create", "full", "15 1 * * 6", "-vm", "/dc/vm/prod/web01",
            "-output", str(export_root / "web01"), "-format", "ova", "-compress",
            "-manifest", "--manifest-target", "raw", "-convert", "--verify",
            "-timezone", "Europe/Berlin", "--overlap", "allow", "-retention", "3",
            env=cli_env,
        )
    )  # fmt: skip
    assert (schedule.timezone, schedule.overlap, schedule.retention) == ("Europe/Berlin", "allow", 3)
    template = schedule.job_template
    assert (template["output_path"], template["format"], template["manifest_target"]) == (
        str(export_root / "web01"),
        "ova",
        "raw",
    )
    assert all(template[name] for name in ("compress", "manifest", "convert", "verify"))


def test_schedule_not_running_list_enable_then_trigger_runs_the_export(
    cli_env, celery_worker, app01_seeds, export_root
):
    schedule = created(
        hyperctl(
            "schedules", "create", "app01-nightly", "0 3 * * *", "-vm", APP01, "-output", str(export_root),
            "-disabled", env=cli_env,
        )
    )  # fmt: skip
    # "Check if schedule is enabled"
    assert table(hyperctl("schedules", "list", env=cli_env))["app01-nightly"][2:] == ["no", "-", "-"]

    enabled = hyperctl("schedules", "enable", schedule.id, env=cli_env)
    assert (enabled.returncode, enabled.stderr) == (0, "")
    schedule.refresh_from_db()
    assert schedule.enabled
    assert enabled.stdout == (
        f"enabled schedule {schedule.id} (app01-nightly): 0 3 * * * — next run "
        f"{schedule.next_run_at:%Y-%m-%d} 03:00+0000 UTC\n"
    )
    assert table(hyperctl("schedules", "list", env=cli_env))["app01-nightly"][2] == "yes"

    triggered = hyperctl("schedules", "trigger", schedule.id, env=cli_env)
    assert triggered.returncode == 0, triggered.stderr
    match = re.fullmatch(rf"triggered {schedule.id}: job (job-[A-Za-z0-9_-]+)\n", triggered.stdout)
    assert match, triggered.stdout
    job = wait_for(
        lambda: Job.objects.filter(id=match.group(1), status__in=Job.FINISHED).first(),
        message="the triggered export to finish",
    )
    assert job.status == "completed", job.error
    assert (job.vm_path, job.origin) == (APP01, "schedule")
    output = Path(job.output_path)
    assert output.parent == export_root and output.name.startswith("app01-nightly-")
    assert sorted(path.name for path in output.iterdir() if path.suffix == ".vmdk")
    assert ScheduleRun.objects.get(schedule=schedule).outcome == "triggered"

    rows = table(hyperctl("schedules", "list", env=cli_env))
    assert rows["app01-nightly"][3] != "-"  # LAST RUN
    # Triggering does not move the next run.
    assert rows["app01-nightly"][4] == f"{schedule.next_run_at:%Y-%m-%d} 03:00+0000 UTC"


def test_disable_then_delete(cli_env):
    schedule = created(
        hyperctl("schedules", "create", "weekly", "0 0 * * 0", "-vm", "/dc/vm/prod/db01", env=cli_env)
    )
    disabled = hyperctl("schedules", "disable", schedule.id, env=cli_env)
    assert (disabled.returncode, disabled.stdout) == (
        0,
        f"disabled schedule {schedule.id} (weekly): no runs until it is enabled\n",
    ), disabled.stderr
    schedule.refresh_from_db()
    assert not schedule.enabled

    deleted = hyperctl("schedules", "delete", schedule.id, env=cli_env)
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted schedule {schedule.id}\n"), deleted.stderr
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0 25 * * *"], "error: cron: invalid cron '0 25 * * *': Bad hour\n"),
        (
            ["* * *"],
            "error: cron: invalid cron '* * *': want 5 fields (minute hour day month weekday) or @daily\n",
        ),
        (["61 * * * *"], "error: cron: invalid cron '61 * * * *': Bad minute\n"),
        (["0 0 * * * *"], "error: cron: invalid cron '0 0 * * * *': want 5 fields"),
        (
            ["@every 5m"],
            "error: cron: invalid cron '@every 5m': only @hourly, @daily, @weekly, @monthly, @yearly are supported\n",
        ),
        (
            ["0 0 31 2 *"],
            "error: cron: invalid cron '0 0 31 2 *': day 31 never falls in month 2: it would never fire\n",
        ),
        (["0 2 * * *", "-timezone", "Mars/Olympus"], "error: timezone: unknown time zone 'Mars/Olympus'\n"),
        (
            ["0 2 * * *", "-output", "/etc/cron.d"],
            "error: output_path must be inside one of the export roots: ",
        ),
    ],
)
def test_a_bad_schedule_is_one_error_line_and_nothing_is_created(cli_env, args, message):
    done = hyperctl(
        "schedules", "create", "nightly", args[0], "-vm", "/dc/vm/prod/web01", *args[1:], env=cli_env
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert not Schedule.objects.exists()


def test_a_duplicate_name_is_refused_and_the_first_schedule_stays(cli_env):
    first = created(
        hyperctl("schedules", "create", "nightly", "0 2 * * *", "-vm", "/dc/vm/prod/web01", env=cli_env)
    )
    again = hyperctl("schedules", "create", "nightly", "0 4 * * *", "-vm", "/dc/vm/prod/db01", env=cli_env)
    assert (again.returncode, again.stderr) == (1, "error: name: a schedule named 'nightly' already exists\n")
    assert list(Schedule.objects.values_list("id", "cron")) == [(first.id, "0 2 * * *")]


@pytest.mark.parametrize("action", ["enable", "disable", "trigger", "delete"])
def test_an_unknown_schedule_is_one_error_line(cli_env, action):
    done = hyperctl("schedules", action, "sched-nope", env=cli_env)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "error: schedule not found: sched-nope\n")
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedules"], "the following arguments are required: ACTION"),
        (["schedules", "create", "nightly", "0 2 * * *"], "the following arguments are required: -vm"),
        (["schedules", "create", "nightly", "-vm", "/dc/vm/prod/web01"], "required: CRON"),
        (
            ["schedules", "create", "n", "@daily", "-vm", "/dc/vm/a/b", "-overlap", "never"],
            "invalid choice: 'never'",
        ),
        (
            ["schedules", "create", "n", "@daily", "-vm", "/dc/vm/a/b", "-format", "zip"],
            "invalid choice: 'zip'",
        ),
        (["schedules", "enable"], "the following arguments are required: SCHEDULE_ID"),
    ],
)
def test_missing_or_malformed_arguments_are_usage_errors(tmp_path, args, message):
    done = run_process("hyperctl", *args, env=bare_env(tmp_path))  # the console script itself
    assert done.returncode == 2
    assert message in done.stderr


def test_remote_and_local_backends_answer_with_the_same_schedule(daemon, export_root):
    local, remote = LocalBackend(), RemoteBackend(daemon.url, daemon.token)
    spec = {"name": "same", "cron": "0 2 * * *", "vm_path": APP01, "output_path": str(export_root)}
    made = remote.create_schedule(spec)
    assert local.get_schedule(made["id"]) == remote.get_schedule(made["id"]) == made
    listing = {"count": 1, "page": 1, "pages": 1, "results": [made]}
    assert local.list_schedules() == remote.list_schedules() == listing
    assert local.list_schedules(page=None) == remote.list_schedules(page=None) == listing
    assert remote.update_schedule(made["id"], {"cron": "0 4 * * *"})["cron"] == "0 4 * * *"
    assert local.update_schedule(made["id"], {"retention": 2})["retention"] == 2
    assert remote.set_schedule_enabled(made["id"], False) == local.get_schedule(made["id"])
    for backend in (local, remote):
        with pytest.raises(CLIError, match="^name: a schedule named 'same' already exists$"):
            backend.create_schedule(spec)
    remote.delete_schedule(made["id"])
    with pytest.raises(CLIError, match=f"^schedule not found: {made['id']}$"):
        local.delete_schedule(made["id"])
