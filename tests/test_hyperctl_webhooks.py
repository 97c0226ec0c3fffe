"""`hyperctl webhooks` as the guide types it, against a live daemon (remote) and on the daemon's
own database (local), delivering to a real receiver on loopback."""

from __future__ import annotations

import re

import pytest

from tests.test_hyperctl_schedules import hyperctl
from tests.webhook_receiver import Receiver, Reply
from webhooks.models import Webhook, WebhookDelivery

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

LOOPBACK = "127.0.0.0/8"
HEADER = ["INDEX", "URL", "FORMAT", "EVENTS", "ENABLED", "LAST DELIVERY"]
ADDED = re.compile(
    r"added webhook (\d+) \((wh-[A-Za-z0-9_-]+)\): (\S+) format: standard events: (.+)\n"
    r"signing secret: (whsec_\S+) \(shown once: store it now\)\n"
)


@pytest.fixture
def cli_env(cli_env, settings) -> dict[str, str]:
    """The shared remote/local CLI environments, loopback receivers allowed: by the live
    server's settings (remote), by the CLI's own environment (local)."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = [LOOPBACK]
    if "HYPERSDK_DAEMON_URL" in cli_env:
        return cli_env
    return cli_env | {"HYPERSDK_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK}


def added(done) -> tuple[Webhook, str]:
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    match = ADDED.fullmatch(done.stdout)
    assert match, done.stdout
    webhook = Webhook.objects.get(id=match.group(2))
    assert (int(match.group(1)), match.group(3), match.group(4)) == (
        Webhook.objects.filter(created_at__lt=webhook.created_at).count(),
        webhook.url,
        " ".join(webhook.events),
    )
    return webhook, match.group(5)


def table(done) -> list[list[str]]:
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    header, *rows = done.stdout.splitlines()
    starts = [header.index(column) for column in HEADER]
    assert starts == sorted(starts), header
    return [
        [row[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)]
        for row in rows
    ]


def test_the_guides_commands_add_list_test_and_delete(cli_env, receiver):
    # Example 1, step 1 (the receiver's URL for Slack's)
    slack, secret = added(
        hyperctl("webhooks", "add", receiver.url, "job.started", "job.completed", "job.failed", env=cli_env)
    )
    assert (slack.events, slack.enabled) == (["job.started", "job.completed", "job.failed"], True)
    # "Add webhook with default events"
    other, _ = added(hyperctl("webhooks", "add", receiver.url_for(path="/other"), env=cli_env))
    assert other.events == ["job.started", "job.completed", "job.failed"]

    events = "job.started,job.completed,job.failed"
    assert table(hyperctl("webhooks", "list", env=cli_env)) == [
        ["0", receiver.url, "standard", events, "yes", "-"],
        ["1", receiver.url_for(path="/other"), "standard", events, "yes", "-"],
    ]

    # "Webhook Not Firing": test it, a signed test payload
    tested = hyperctl("webhooks", "test", "0", env=cli_env)
    assert (tested.returncode, tested.stderr) == (0, ""), tested.stderr
    assert re.fullmatch(rf"test delivery to {re.escape(receiver.url)}: HTTP 200 in \d+ ms\n", tested.stdout)
    (request,) = receiver.requests
    payload = request.verify(secret)
    assert (payload["event"], payload["data"]) == ("test", {})

    receiver.reply(Reply(500, body=b"boom"))
    failed = hyperctl("webhooks", "test", "1", env=cli_env)
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr == f"error: test delivery to {other.url} failed: HTTP 500\n"
    assert [row[5] for row in table(hyperctl("webhooks", "list", env=cli_env))] == ["200", "HTTP 500"]
    assert WebhookDelivery.objects.count() == 2

    deleted = hyperctl("webhooks", "delete", "0", env=cli_env)
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted webhook 0 ({slack.id}): {slack.url}\n")
    assert list(Webhook.objects.values_list("id", flat=True)) == [other.id]
    assert [row[:2] for row in table(hyperctl("webhooks", "list", env=cli_env))] == [["0", other.url]]


def test_a_refused_test_delivery_is_one_error_line(cli_env):
    closed = Receiver().start()
    url = closed.url
    closed.stop()  # nothing listens there any more
    added(hyperctl("webhooks", "add", url, env=cli_env))
    done = hyperctl("webhooks", "test", "0", env=cli_env)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"error: test delivery to {url} failed: ") and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "not a url"], "error: url: "),
        (["add", "ftp://example.com/hook"], "error: url: "),
        (["add", "{receiver}", "job.started", "job.finished"], "error: events: unknown event 'job.finished'"),
        (["add", "http://10.1.2.3/hook"], "error: url: "),
        (["test", "3"], "error: no webhook at index 3: there are no webhooks\n"),
        (["delete", "0"], "error: no webhook at index 0: there are no webhooks\n"),
    ],
)
def test_bad_input_is_one_error_line_and_creates_nothing(cli_env, receiver, args, message):
    args = [arg.replace("{receiver}", receiver.url) for arg in args]
    done = hyperctl("webhooks", *args, env=cli_env)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert not Webhook.objects.exists() and receiver.requests == []
