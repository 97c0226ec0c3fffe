"""The CLIs as a shell sees them: a reader that goes away, the help, usage errors, completion.

Real processes (the installed console scripts) and a real bash: what is tested here is what
the shell and the operator see, the exit status included.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.pipes import BROKEN_PIPE_STATUS
from exports.job_states import FINISHED_STATUSES, JOB_STATUSES
from exports.models import Job
from tests.cli_runner import BIN, run_in_process, run_process
from tests.conftest import bare_env

BASH = "/bin/bash"
ZSH = shutil.which("zsh") or "zsh"


@pytest.fixture
def remote_env(daemon, tmp_path) -> dict[str, str]:
    return bare_env(tmp_path) | daemon.env


def test_job_states_without_django_are_the_models_states():
    assert JOB_STATUSES == tuple(Job.Status.values)
    assert FINISHED_STATUSES == tuple(str(status) for status in Job.FINISHED)


# ---- a reader that goes away -----------------------------------------------------------------


def test_a_list_piped_into_head_stops_quietly_with_the_sigpipe_status(remote_env):
    # More lines than a pipe holds (64 KiB): the list must still be writing when head exits.
    Job.objects.bulk_create(
        Job(vm_path=f"/dc/vm/prod/web{i:05}", output_path=f"/exports/web{i:05}", status="completed")
        for i in range(2000)
    )
    pipeline = f"set -o pipefail; {shlex.quote(str(BIN / 'hyperexport'))} --daemon-list all --quiet | head -2"
    result = subprocess.run(
        [BASH, "-c", pipeline], env=remote_env, capture_output=True, text=True, timeout=600
    )
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 2
    assert result.returncode == BROKEN_PIPE_STATUS == 141


@pytest.mark.parametrize("program, args", [("hyperctl", ["status"]), ("hyperexport", ["--daemon-status"])])
def test_output_to_a_pipe_whose_reader_is_gone_ends_without_a_traceback(program, args, remote_env):
    """As ``hyperctl status | head -1`` once head has exited: every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [str(BIN / program), *args], env=remote_env, stdout=write_end, stderr=subprocess.PIPE, timeout=600
        )
    finally:
        os.close(write_end)
    assert result.stderr.decode() == ""
    assert result.returncode == BROKEN_PIPE_STATUS


MANAGE = str(Path(__file__).resolve().parent.parent / "manage.py")


def test_manage_py_hyperexport_into_a_gone_reader_ends_without_a_traceback(remote_env):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, MANAGE, "hyperexport", "--daemon-status"],
            env=remote_env, stdout=write_end, stderr=subprocess.PIPE, timeout=600,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr.decode() == ""
    assert result.returncode == BROKEN_PIPE_STATUS


@pytest.mark.parametrize(
    "command",
    [
        ["hyperctl", "--help"],
        ["hyperctl", "completion", "bash"],
        ["hyperexport", "--help"],
        ["manage.py hyperexport", "--help"],
    ],
)
def test_output_to_a_full_device_is_a_one_line_error(command, tmp_path):
    program, *args = command
    argv = (
        [sys.executable, MANAGE, "hyperexport", *args]
        if program.startswith("manage.py")
        else [str(BIN / program), *args]
    )
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            argv, env=bare_env(tmp_path), stdout=full, stderr=subprocess.PIPE, text=True, timeout=600
        )
    assert result.stderr == f"{program}: cannot write output: No space left on device\n"
    assert result.returncode == 1


def test_a_direct_export_with_stdout_closed_fails_before_starting(tmp_path):
    output = tmp_path / "out"
    result = subprocess.run(
        [str(BIN / "hyperexport"), "-vm", "/dc/vm/prod/web01", "-output", str(output)],
        env=bare_env(tmp_path), stderr=subprocess.PIPE, text=True, timeout=600,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert result.stderr == "hyperexport: cannot write output: standard output is closed\n"
    assert result.returncode == 1 and not output.exists()


def test_an_unusable_data_dir_is_a_one_line_error(tmp_path):
    env = bare_env(tmp_path) | {"HYPERSDK_DATA_DIR": "/proc/nope"}
    result = run_process("hyperexport", "--daemon-status", "--daemon-url", "http://127.0.0.1:1", env=env)
    assert result.stderr == "error: HYPERSDK_DATA_DIR /proc/nope cannot be used: No such file or directory\n"
    assert result.returncode == 2


@pytest.mark.parametrize("data_dir", ["/dev/null", "file"])
def test_a_data_dir_that_is_no_directory_is_a_one_line_error(tmp_path, data_dir):
    if data_dir == "file":
        data_dir = str(tmp_path / "file")
        Path(data_dir).write_text("x")
    env = bare_env(tmp_path) | {"HYPERSDK_DATA_DIR": data_dir}
    result = run_process("hyperctl", "status", env=env)
    assert result.stderr == f"error: HYPERSDK_DATA_DIR {data_dir} cannot be used: Not a directory\n"
    assert result.returncode == 2


# ---- help and usage errors ------------------------------------------------------------------


def test_help_shows_our_commands_and_flags_and_the_guides_examples_only(tmp_path):
    result = run_process("hyperctl", "--help", env=bare_env(tmp_path))
    assert result.returncode == 0
    for ours in ("query", "status", "watch", "logs", "cancel", "schedules", "webhooks", "-daemon-url"):
        assert ours in result.stdout
    assert 'hyperctl schedules create daily-backup "0 2 * * *" -vm /dc/vm/prod/web01' in result.stdout
    for django_option in (
        "--settings",
        "--pythonpath",
        "--traceback",
        "--no-color",
        "--force-color",
        "-v {0",
    ):
        assert django_option not in result.stdout


def test_hyperexport_help_shows_its_own_flags_only(tmp_path):
    result = run_process("hyperexport", "--help", env=bare_env(tmp_path))
    assert result.returncode == 0 and "-daemon-status" in result.stdout and "-vm PATH" in result.stdout
    for django_option in ("--settings", "--pythonpath", "--traceback", "--no-color", "--skip-checks"):
        assert django_option not in result.stdout


@pytest.mark.parametrize(
    "argv, prog",
    [
        ([str(BIN / "hyperctl")], "hyperctl logs"),
        ([sys.executable, "manage.py", "hyperctl"], "manage.py hyperctl logs"),
    ],
)
def test_a_usage_error_names_the_command_once(argv, prog, tmp_path):
    result = subprocess.run(
        [*argv, "logs"],
        env=bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 2
    assert result.stderr == f"{prog}: error: the following arguments are required: JOB_ID\n"
    usage = subprocess.run(
        [*argv, "logs", "--help"], env=bare_env(tmp_path), capture_output=True, text=True, timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert usage.stdout.startswith(f"usage: {prog} [-h]")


def test_webhooks_add_without_arguments_requires_the_url_only(tmp_path):
    result = run_process("hyperctl", "webhooks", "add", env=bare_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr == "hyperctl webhooks add: error: the following arguments are required: URL\n"


def test_help_and_usage_errors_load_no_django(tmp_path):
    """Start-up: the parser is argparse only, so --help costs no app loading."""
    probe = (
        "import sys; sys.argv = ['hyperctl', '--help']\n"
        "from hypersdk.cli import hyperctl\n"
        "try:\n    hyperctl()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('django.apps', 'django.db.models', 'rest_framework', 'celery') if m in sys.modules]\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=bare_env(tmp_path), capture_output=True, text=True, timeout=600
    )
    assert "LOADED []" in result.stderr


def test_a_local_listing_loads_neither_celery_nor_the_admin_nor_the_webhooks_delivery(tmp_path):
    """Start-up: a read on the local services loads the ORM and what the command uses only."""
    probe = (
        "import sys; sys.argv = ['hyperctl', 'schedules', 'list']\n"
        "from hypersdk.cli import hyperctl\n"
        "try:\n    hyperctl()\nexcept SystemExit:\n    pass\n"
        "heavy = ('celery', 'exports.admin', 'webhooks.service', 'webhooks.sending', 'httpx', 'drf_spectacular.openapi')\n"
        "print('ORM', 'django.db.models' in sys.modules, 'LOADED', [m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=bare_env(tmp_path), capture_output=True, text=True, timeout=600
    )
    assert "ORM True LOADED []" in result.stderr


# ---- completion ----------------------------------------------------------------------------


def complete(
    script: str, words: list[str], env: dict[str, str], shell: str = BASH, *, line: str | None = None
) -> list[str]:
    """COMPREPLY of the completion function for ``words`` (the last is the word being typed), in
    bash or in zsh (whose bash emulation runs the function with 0-based arrays, ksharrays);
    ``line``: COMP_LINE, the cursor at its end."""
    comp_line = "" if line is None else f"COMP_LINE={shlex.quote(line)}; COMP_POINT={len(line)}"
    program = f"""
source {shlex.quote(script)}
{"setopt ksharrays" if shell == ZSH else ""}
COMP_WORDS=({" ".join(shlex.quote(word) for word in words)})
COMP_CWORD={len(words) - 1}
{comp_line}
_hyperctl
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = env | {"PATH": f"{BIN}:{env.get('PATH', '')}"}
    result = subprocess.run([shell, "-c", program], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "command not found" not in result.stderr, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.fixture
def bash_completion(tmp_path) -> str:
    result = run_process("hyperctl", "completion", "bash", env=bare_env(tmp_path))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "hyperctl.bash"
    path.write_text(result.stdout)
    return str(path)


def test_bash_completes_subcommands_actions_and_flags(bash_completion, tmp_path):
    env = bare_env(tmp_path)
    assert complete(bash_completion, ["hyperctl", ""], env) == [
        "query", "status", "watch", "logs", "cancel", "schedules", "webhooks", "vms", "completion",
    ]  # fmt: skip
    assert complete(bash_completion, ["hyperctl", "vms", ""], env) == ["list", "info"]
    assert complete(bash_completion, ["hyperctl", "vms", "list", "-power", "o"], env) == ["on", "off"]
    assert complete(bash_completion, ["hyperctl", "sch"], env) == ["schedules"]
    assert complete(bash_completion, ["hyperctl", "schedules", "t"], env) == ["trigger"]
    assert sorted(complete(bash_completion, ["hyperctl", "logs", "-t"], env)) == ["-tail", "-token-file"]
    assert complete(bash_completion, ["hyperctl", "query", "-status", "c"], env) == ["completed", "cancelled"]
    assert complete(bash_completion, ["hyperctl", "completion", ""], env) == ["bash", "zsh"]
    # A flag's value is not taken for a subcommand: -daemon-url's URL is skipped.
    assert complete(bash_completion, ["hyperctl", "--daemon-url", "http://h:8080", "sta"], env) == ["status"]


def test_bash_completes_job_ids_from_the_quiet_listing(bash_completion, remote_env):
    ids = [
        job.id
        for job in Job.objects.bulk_create([Job(vm_path="/dc/vm/a", output_path="/e/a") for _ in range(2)])
    ]
    assert sorted(complete(bash_completion, ["hyperctl", "logs", ""], remote_env)) == sorted(ids)
    assert complete(bash_completion, ["hyperctl", "watch", ids[0][:-1]], remote_env) == [ids[0]]
    assert sorted(complete(bash_completion, ["hyperctl", "query", "-id", ""], remote_env)) == sorted(ids)
    assert complete(bash_completion, ["hyperctl", "logs", ids[0], ""], remote_env) == []  # one job id only


def test_zsh_script_loads_the_same_completion_through_bashcompinit(tmp_path):
    result = run_process("hyperctl", "completion", "zsh", env=bare_env(tmp_path))
    assert result.returncode == 0
    assert result.stdout.startswith("#compdef hyperctl\n")
    assert "bashcompinit" in result.stdout and "complete -F _hyperctl hyperctl" in result.stdout


def test_bash_offers_a_daemons_job_ids_as_text_never_running_them(bash_completion, tmp_path):
    marker = tmp_path / "ran"
    hostile = [f"job-$(touch${{IFS}}{marker})", f"job-`touch {marker}`", "job-ok"]
    fake = tmp_path / "fake-hyperctl"
    fake.write_text("#!/bin/sh\nprintf '%s\\n' " + " ".join(shlex.quote(word) for word in hostile) + "\n")
    fake.chmod(0o755)
    assert complete(bash_completion, [str(fake), "logs", "job-"], bare_env(tmp_path)) == hostile
    assert not marker.exists()


def test_completion_ids_are_the_newest_plain_ones_starting_with_the_word(remote_env):
    Job.objects.bulk_create([Job(vm_path="/dc/vm/a", output_path="/e/a") for _ in range(205)])
    Job.objects.bulk_create([Job(id="job-$(touch${IFS}x)", vm_path="/dc/vm/a", output_path="/e/a")])
    newest = [job.id for job in Job.objects.order_by("-created_at")[:200]]
    result = run_process("hyperctl", "query", "--complete-ids=", env=remote_env)
    assert result.returncode == 0, result.stderr
    offered = result.stdout.split()
    assert len(offered) == 199 and set(offered) < set(newest) and "job-$(touch${IFS}x)" not in offered
    prefix = offered[0][:6]
    result = run_process("hyperctl", "query", f"--complete-ids={prefix}", env=remote_env)
    assert result.stdout.split() == [job_id for job_id in offered if job_id.startswith(prefix)]


@pytest.mark.parametrize("joined", [" ", "="])
def test_completion_reads_a_daemon_url_that_bash_split_at_colons(bash_completion, daemon, tmp_path, joined):
    job_id = Job.objects.create(vm_path="/dc/vm/a", output_path="/e/a").id
    env = bare_env(tmp_path) | {"HYPERSDK_API_TOKEN": daemon.token}
    line = f"hyperctl --daemon-url{joined}{daemon.url} logs "
    # As bash hands them over: each word split again at COMP_WORDBREAKS' ":" and "=".
    words = [piece for word in line.split() for piece in re.findall(r"[:=]+|[^:=]+", word)] + [""]
    assert complete(bash_completion, words, env, line=line) == [job_id]


@pytest.mark.parametrize("where", ["remote", "local"])
def test_completion_filters_by_the_prefix_before_taking_the_newest_200(remote_env, where):
    Job.objects.create(id="zz-older-than-200", vm_path="/dc/vm/a", output_path="/e/a")
    Job.objects.bulk_create([Job(vm_path="/dc/vm/a", output_path="/e/a") for _ in range(205)])
    if where == "remote":
        result = run_process("hyperctl", "query", "--complete-ids=zz", env=remote_env)
    else:  # in process: this test's database
        env = {name: value for name, value in remote_env.items() if name != "HYPERSDK_DAEMON_URL"}
        result = run_in_process("hyperctl", "query", "--complete-ids=zz", env=env)
    assert (result.returncode, result.stdout.split()) == (0, ["zz-older-than-200"]), result.stderr


def test_completion_asks_the_daemon_named_on_the_command_line(bash_completion, daemon, tmp_path):
    job_id = Job.objects.create(vm_path="/dc/vm/a", output_path="/e/a").id
    env = bare_env(tmp_path) | {"HYPERSDK_API_TOKEN": daemon.token}
    words = ["hyperctl", "--daemon-url", daemon.url, "logs", ""]
    assert complete(bash_completion, words, env) == [job_id]


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_completes_job_ids_with_its_path_intact(remote_env, tmp_path):
    job_id = Job.objects.create(vm_path="/dc/vm/a", output_path="/e/a").id
    result = run_process("hyperctl", "completion", "zsh", env=bare_env(tmp_path))
    script = tmp_path / "hyperctl.zsh"
    script.write_text(result.stdout)
    assert complete(str(script), ["hyperctl", "logs", ""], remote_env | {"HOME": str(tmp_path)}, ZSH) == [
        job_id
    ]
