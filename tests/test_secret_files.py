"""Secrets read from files (``<NAME>_FILE``), as a container's or an orchestrator's mounted
secrets are given: the file wins over the plain variable, its trailing newline is not part of
the secret, and a file that cannot be read stops start-up with one line naming the variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from cli.backends import CLIError, read_token
from hypersdk.lib.env import ConfigError, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS_OF_A_FRESH_PROCESS = """
import json
import django
django.setup()
from django.conf import settings
print(json.dumps({
    "secret_key": settings.SECRET_KEY,
    "database": settings.DATABASES["default"]["NAME"],
    "redis_url": settings.REDIS_URL,
    "broker": settings.CELERY_BROKER_URL,
}))
"""


def secret_file(directory: Path, name: str, content: str) -> str:
    path = directory / name
    path.write_text(content)
    path.chmod(0o600)
    return str(path)


def fresh_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """This environment without the suite's own settings, plus ``variables``."""
    own = ("HYPERSDK_", "DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return env | {
        "DJANGO_SETTINGS_MODULE": "hypersdk.settings",
        "HYPERSDK_DATA_DIR": str(tmp_path / "data"),
        **variables,
    }


def test_the_daemons_settings_read_each_secret_from_its_file(tmp_path):
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    database = tmp_path / "from-file.sqlite3"
    env = fresh_environment(
        tmp_path,
        HYPERSDK_SECRET_KEY="the-plain-variable-loses",
        HYPERSDK_SECRET_KEY_FILE=secret_file(secrets, "key", "key-from-a-file-0123456789\n"),
        DATABASE_URL_FILE=secret_file(secrets, "db", f"sqlite:///{database}\n"),
        REDIS_URL_FILE=secret_file(secrets, "redis", "redis://:s3cret@127.0.0.1:6399/3\n"),
    )
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_OF_A_FRESH_PROCESS],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "secret_key": "key-from-a-file-0123456789",
        "database": str(database),
        "redis_url": "redis://:s3cret@127.0.0.1:6399/3",
        "broker": "redis://:s3cret@127.0.0.1:6399/3",
    }


def test_an_unreadable_secret_file_stops_start_up_with_one_line(tmp_path):
    missing = tmp_path / "no-such-secret"
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=fresh_environment(tmp_path, HYPERSDK_SECRET_KEY_FILE=str(missing)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: HYPERSDK_SECRET_KEY_FILE: cannot read {missing}: No such file or directory\n"
    )


def test_env_str_prefers_the_file_and_strips_its_line_end(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERSDK_TEST_SECRET", "plain")
    assert env_str("HYPERSDK_TEST_SECRET") == "plain"
    monkeypatch.setenv("HYPERSDK_TEST_SECRET_FILE", secret_file(tmp_path, "s", "  from-file \n\n"))
    assert env_str("HYPERSDK_TEST_SECRET") == "from-file"
    monkeypatch.setenv("HYPERSDK_TEST_SECRET_FILE", str(tmp_path))  # a directory
    with pytest.raises(
        ConfigError, match=rf"^HYPERSDK_TEST_SECRET_FILE: cannot read {tmp_path}: Is a directory$"
    ):
        env_str("HYPERSDK_TEST_SECRET")


@pytest.mark.django_db
def test_bootstrap_admin_takes_the_password_from_its_file(tmp_path, monkeypatch):
    monkeypatch.delenv("HYPERSDK_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv(
        "HYPERSDK_ADMIN_PASSWORD_FILE", secret_file(tmp_path, "admin", "a password from a file\n")
    )
    out = StringIO()
    call_command("bootstrap_admin", stdout=out)
    assert authenticate(username="admin", password="a password from a file") is not None
    assert "a password from a file" not in out.getvalue()


def test_hyperctl_reads_the_api_token_from_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERSDK_API_TOKEN", "the-plain-variable-loses")
    monkeypatch.setenv("HYPERSDK_API_TOKEN_FILE", secret_file(tmp_path, "token", "tok-from-file\n"))
    assert read_token(None) == "tok-from-file"
    monkeypatch.setenv("HYPERSDK_API_TOKEN_FILE", str(tmp_path / "gone"))
    with pytest.raises(CLIError) as failure:
        read_token(None)
    assert str(failure.value) == (
        f"HYPERSDK_API_TOKEN_FILE: cannot read {tmp_path / 'gone'}: No such file or directory"
    )
