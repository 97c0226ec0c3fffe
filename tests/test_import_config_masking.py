"""import_config never prints a webhook URL's secret: credentials, query, or a chat service's secret path."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run(path) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("import_config", str(path), stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


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
