"""`manage.py import_config`: v0.1.x schedules come over once; nothing is dropped silently."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from schedules.models import Schedule
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db

SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"
SLACK_SHOWN = "https://hooks.slack.com/services/T000/…"  # a chat URL's path is its secret

CONFIG = """
schedules:
  - name: daily-backup
    schedule: "0 2 * * *"
    vm: /dc/vm/prod/web01
    output: {root}/backups
  - name: weekly-archive
    cron: "0 0 * * 0"
    vm_path: /dc/vm/prod/db01
    format: ova
    compress: true
  - name: broken
    schedule: "0 25 * * *"
    vm: /dc/vm/prod/app01
webhooks:
  - url: https://hooks.slack.com/services/T000/B000/XXXX
    events: [job.completed, job.failed]
"""


def run(path) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("import_config", str(path), stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_import_creates_schedules_and_says_what_it_could_not_import(tmp_path, export_root):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(root=export_root))
    code, out, err = run(config)
    assert code == 1
    assert sorted(Schedule.objects.values_list("name", flat=True)) == ["daily-backup", "weekly-archive"]
    daily = Schedule.objects.get(name="daily-backup")
    assert (daily.cron, daily.job_template["vm_path"], daily.job_template["output_path"]) == (
        "0 2 * * *",
        "/dc/vm/prod/web01",
        str(export_root / "backups"),
    )
    assert Schedule.objects.get(name="weekly-archive").job_template["format"] == "ova"
    assert "error: schedule broken: cron: invalid cron '0 25 * * *'" in err
    webhook = Webhook.objects.get()
    assert (webhook.url, webhook.target_url, webhook.format, webhook.events) == (
        SLACK_SHOWN,
        SLACK,
        "slack",
        ["job.completed", "job.failed"],
    )
    created = [line for line in out.splitlines() if line.startswith(f"created webhook {SLACK_SHOWN}")]
    assert len(created) == 1 and "format slack (slack messages are not signed)" in created[0]
    assert SLACK not in out
    assert out.strip().splitlines()[-1] == "3 created, 0 skipped, 1 not imported"


def test_import_is_idempotent(tmp_path, export_root):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(root=export_root))
    run(config)
    code, out, _ = run(config)
    assert "skipped schedule daily-backup: exists" in out
    assert f"skipped webhook {SLACK_SHOWN}: exists" in out
    assert out.strip().splitlines()[-1] == "0 created, 3 skipped, 1 not imported"
    assert Schedule.objects.count() == 2 and Webhook.objects.count() == 1


def test_empty_lists_from_the_guides_migration_step_import_nothing(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("schedules: []\nwebhooks: []\n")
    assert run(config)[:2] == (0, "0 created, 0 skipped, 0 not imported\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schedules: {a: 1}\n", "schedules must be a list"),
        ("- x\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_files_are_one_clear_line(tmp_path, text, message):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    code, _, err = run(config)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_missing_file(tmp_path):
    code, _, err = run(tmp_path / "nope.yaml")
    assert code == 1 and err.startswith("error: cannot read")


def test_a_webhook_that_cannot_be_imported_is_reported_not_skipped(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("webhooks:\n  - url: http://10.1.2.3/hook\n")
    code, out, err = run(config)
    assert code == 1
    assert "error: webhook http://10.1.2.3/hook: url: 10.1.2.3 is a private address" in err
    assert out.strip().splitlines()[-1] == "0 created, 0 skipped, 1 not imported"


@pytest.mark.parametrize("extra", ["    bogus: 1\n", "    events: [job.nope]\n"])
def test_a_refused_webhook_is_named_without_its_credentials(tmp_path, extra):
    config = tmp_path / "config.yaml"
    config.write_text(f"webhooks:\n  - url: http://user:hunter2@hooks.example/y?token=t0ken\n{extra}")
    code, out, err = run(config)
    assert code == 1
    assert "error: webhook http://***@hooks.example/y?token=***: " in err
    assert "hunter2" not in out + err and "t0ken" not in out + err


def test_a_schedule_with_both_cron_and_schedule_is_refused_naming_both(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        'schedules:\n  - name: twice\n    cron: "0 2 * * *"\n    schedule: "0 3 * * *"\n    vm: /dc/vm/a\n'
    )
    code, _, err = run(config)
    assert code == 1 and "schedule twice: give only one of cron and schedule" in err
    assert not Schedule.objects.filter(name="twice").exists()


@pytest.mark.parametrize(
    ("url", "extra", "secret"),
    [
        # A Slack URL whose secret has no digit (letters only): the refusal prints it whole.
        (
            "https://hooks.slack.com/services/T0001/B0001/SecretSlackPathToken",
            "    bogus: 1\n",
            "SecretSlackPathToken",
        ),
        # A self-hosted Slack-format (Mattermost-style) URL: format says its path is the secret.
        (
            "https://chat.example/hooks/onlylettersecretpath",
            "    format: slack\n    bogus: 1\n",
            "onlylettersecretpath",
        ),
        # Discord: a short token-ish last segment.
        (
            "https://discord.com/api/webhooks/123456/abcdefghABCDEFGH",
            "    events: [job.nope]\n",
            "abcdefghABCDEFGH",
        ),
        # An unparseable URL with a password: the parser's message echoes it.
        ("http://user:hunter2@[bad", "", "hunter2"),
        ("http://user:hunter2@host:99999999/x", "", "hunter2"),
    ],
)
def test_import_config_never_prints_a_webhook_urls_secret(tmp_path, url, extra, secret):
    config = tmp_path / "config.yaml"
    config.write_text(f"webhooks:\n  - url: '{url}'\n{extra}")
    code, out, err = run(config)
    assert secret not in out + err, out + err
