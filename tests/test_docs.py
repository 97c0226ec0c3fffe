"""The documentation is tested like code. Every relative link and #anchor of README.md and
docs/**/*.md resolves; every fenced block of README.md and docs/*.md names its language; and
every shell block there runs as written on a temporary machine (the vSphere simulator, a daemon
on the test database, a data dir of its own), unless the line above it says why it cannot:
``<!-- not run: reason -->``. A new shell block is run by adding it: nothing to register."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.utils import timezone

from exports.models import Job, JobLog
from tests.conftest import APP01, Daemon, WorkerProcess, wait_for
from tests.factories import make_job
from tests.markdown_docs import (
    ROOT,
    Block,
    all_docs,
    anchors,
    fenced_blocks,
    link_problem,
    relative_links,
    user_docs,
)

BIN = Path(sys.executable).parent
BLOCKS = [block for page in user_docs() for block in fenced_blocks(page)]
SHELL_BLOCKS = [block for block in BLOCKS if block.is_shell]
RUNNABLE = [block for block in SHELL_BLOCKS if block.not_run_reason is None]
# Blocks excused from running (production installs, systemd, Docker, the suite itself...).
# Raise it only with a reason in the comment above the new block.
MAX_NOT_RUN = 10


# ---- links and blocks, read without running anything ----------------------------------------


def test_every_relative_link_and_anchor_resolves():
    problems = [
        f"{page.relative_to(ROOT)}:{line}: ({target}) {problem}"
        for page in all_docs()
        for line, target in relative_links(page)
        if (problem := link_problem(page, target))
    ]
    assert problems == []


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "cli.md").write_text("# Command line\n\n## Export a VM in one command\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Title\n\n## Two words\n\n```bash\n# not a heading\n```\n\n"
        "[ok](#two-words) [code](#not-a-heading) [file](cli.md#export-a-vm-in-one-command)\n"
        "[gone](nowhere.md) [bad anchor](cli.md#no-such-section) `[in code](nowhere.md)`\n"
        "[up](../../etc/passwd)\n"
    )
    problems = [target for _, target in relative_links(page) if link_problem(page, target, root=tmp_path)]
    assert problems == ["#not-a-heading", "nowhere.md", "cli.md#no-such-section", "../../etc/passwd"]


def test_heading_anchors_are_the_code_hosts():
    names = anchors(ROOT / "docs" / "webhooks.md")
    assert {"format-slack-slack-incoming-webhooks", "delivery-every-format", "api"} <= names
    assert "what-a-real-vms-export-contains" in anchors(ROOT / "docs" / "cli.md")


def test_every_fenced_block_names_its_language():
    """An unlabelled block could hide a command from the run below."""
    assert [block.name for block in BLOCKS if not block.language] == []


def test_a_block_excused_from_running_says_why():
    unexplained = [block.name for block in SHELL_BLOCKS if block.not_run_reason == ""]
    assert unexplained == []
    misplaced = [block.name for block in BLOCKS if not block.is_shell and block.not_run_reason is not None]
    assert misplaced == [], "a 'not run' comment only excuses a shell block"


def test_few_shell_blocks_are_excused_from_running():
    excused = [f"{block.name}: {block.not_run_reason}" for block in SHELL_BLOCKS if block.not_run_reason]
    assert len(excused) <= MAX_NOT_RUN, "\n".join(excused)
    assert len(RUNNABLE) > len(excused)


def test_an_unmarked_shell_block_is_run_and_a_marked_one_is_not(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\nhyperctl status\n```\n\n<!-- not run: needs systemd -->\n\n```sh\nsystemctl status x\n```\n"
        "<!-- not run: -->\n```console\nfalse\n```\n"
    )
    first, second, third = fenced_blocks(page)
    assert (first.not_run_reason, second.not_run_reason, third.not_run_reason) == (None, "needs systemd", "")


# ---- every shell block, run --------------------------------------------------------------------

_ROOTS = ("exports", "backups", "archives")
_PLACEHOLDER = re.compile(r"<[a-z][a-z-]*>")


@pytest.fixture(scope="module")
def export_worker(worker_environment, tmp_path_factory):
    """A worker on the export queue only: webhook deliveries (to hooks.slack.com in Example 1)
    stay queued and are never sent from a test."""
    worker = WorkerProcess(
        worker_environment,
        tmp_path_factory.mktemp("docs-worker") / "worker.log",
        name=f"docs-{uuid.uuid4().hex[:6]}",
        queues="celery",
    ).start()
    yield worker
    worker.stop()


@dataclass
class Machine:
    """A daemon's machine as the docs see it: the clone (cwd, with `.venv`, `manage.py` and
    the data dir `var`), /exports, /backups and /archives, the daemon at http://localhost:8080,
    and what the placeholders name."""

    cwd: Path
    base: Path
    env: dict[str, str]
    daemon: Daemon
    placeholders: dict[str, str]

    def substitute(self, text: str) -> str:
        for name in _ROOTS:
            text = re.sub(rf"(?<![\w.~/-])/{name}(?![\w.-])", str(self.base / name), text)
        text = text.replace("http://localhost:8080", self.daemon.url.rstrip("/"))
        for placeholder, value in self.placeholders.items():
            text = text.replace(placeholder, value)
        return text

    def run(self, script: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.cwd, env=env or self.env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip


@pytest.fixture
def machine(
    export_worker, worker_environment, daemon, receiver, export_roots_base, settings, monkeypatch
) -> Machine:
    base = Path(tempfile.mkdtemp(prefix="docs-", dir=export_roots_base))
    cwd = base / "clone"
    data_dir = cwd / "var"
    data_dir.mkdir(parents=True, mode=0o700)
    (data_dir / "secret_key").write_text(settings.SECRET_KEY)  # what make run leaves there
    (data_dir / "secret_key").chmod(0o600)
    for name in (".venv", "manage.py", "deploy"):
        (cwd / name).symlink_to(ROOT / name)
    for name in _ROOTS:
        (base / name).mkdir()
    (base / "home").mkdir()
    roots = [str(base / name) for name in _ROOTS] + [str(data_dir / "exports")]
    env = {key: value for key, value in worker_environment.items() if key != "HYPERSDK_SECRET_KEY"}
    env.update(
        HOME=str(base / "home"),
        HYPERSDK_DATA_DIR=str(data_dir),
        HYPERSDK_EXPORT_ROOTS=",".join(roots),
        HYPERSDK_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        HYPERSDK_API_TOKEN=daemon.token,
    )
    # The API (daemon.url) runs in this process: it accepts the same roots and loopback receivers.
    settings.HYPERSDK_EXPORT_ROOTS = [*settings.HYPERSDK_EXPORT_ROOTS, str(export_roots_base)]
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    for key, value in worker_environment.items():  # and the same default vCenter (GET /vms)
        if key.startswith("GOVC_"):
            monkeypatch.setenv(key, value)
    return Machine(cwd, base, env, daemon, _world(base, receiver.url, daemon.token))


def _world(base: Path, receiver_url: str, token: str) -> dict[str, str]:
    """What the placeholders name: a completed job, a failed one, a schedule, a webhook."""
    from schedules.service import create_schedule
    from schedules.spec import ScheduleSpecSerializer
    from webhooks.service import add_webhook

    now = timezone.now()
    times = {"created_at": now, "started_at": now, "finished_at": now}
    done = make_job("/dc/vm/prod/web01", str(base / "exports" / "web01-earlier"), status="completed", **times)
    JobLog.objects.create(job=done, level="info", message="export completed")
    failed = make_job(
        APP01, str(base / "exports" / "app01-failed"), status="failed", error="VM not found", **times
    )
    JobLog.objects.create(job=failed, level="error", message="VM not found: /dc/vm/prod/app01")
    spec = ScheduleSpecSerializer(
        data={"name": "nightly", "cron": "0 2 * * *", "vm_path": "/dc/vm/prod/web02",
              "output_path": str(base / "backups" / "web02")}
    )  # fmt: skip
    spec.is_valid(raise_exception=True)
    schedule = create_schedule(spec.validated_data)
    webhook, _ = add_webhook(receiver_url)
    return {
        "<job-id>": done.id,
        "<schedule-id>": schedule.id,
        "<index>": str(webhook.index),
        "<webhook-url>": receiver_url,
        "<token>": token,
    }


def _prepare(machine: Machine, script: str) -> None:
    """Files a block reads that a real machine would have from earlier work."""
    if "manifest.json" in script:  # an export with its manifest, as the troubleshooting expects
        made = machine.run(
            f"hyperexport -vm /dc/vm/prod/web01 -output {machine.base}/exports/vm01 -manifest -quiet"
        )
        assert made.returncode == 0, made.stderr
    if "var/hypersdk.sqlite3" in script:  # make run's database in its data dir
        env = {key: value for key, value in machine.env.items() if key != "DATABASE_URL"}
        made = machine.run(".venv/bin/python manage.py migrate --noinput", env=env)
        assert made.returncode == 0, made.stderr


@pytest.mark.vsphere
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda block: block.name)
def test_shell_block_runs_as_written(block: Block, machine: Machine):
    script = machine.substitute(block.text)
    left = sorted(set(_PLACEHOLDER.findall(script)))
    assert left == [], f"{block.name}: placeholders the test does not know: {left}"
    _prepare(machine, script)
    known_jobs = set(Job.objects.values_list("id", flat=True))

    ran = machine.run(script)

    report = f"{block.name}\n{script}\n--- stdout:\n{ran.stdout[-3000:]}\n--- stderr:\n{ran.stderr[-3000:]}"
    assert ran.returncode == 0, report
    assert "Traceback" not in ran.stdout + ran.stderr, report
    # Jobs the block started run to their end on the worker, and none of them fails.
    wait_for(
        lambda: not Job.objects.filter(status__in=Job.ACTIVE).exists(),
        timeout=600, message=f"the jobs of {block.name} to end",
    )  # fmt: skip
    ended = Job.objects.exclude(id__in=known_jobs).exclude(status=Job.Status.COMPLETED)
    assert [(job.vm_path, job.status, job.error) for job in ended] == [], report
