"""The data dir and its secrets are private (0700/0600) whatever the umask; open ones are
tightened when ours and refused, with the fix, when another user's."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from hypersdk.lib.private_files import InsecurePermissions, read_or_create_secret, secure_data_dir

BASE_DIR = Path(__file__).resolve().parent.parent
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def umask(value: int):
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def open_dir(path: Path, owner: int | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def open_file(path: Path, owner: int | None = None, text: str = "secret") -> Path:
    path.write_text(text)
    path.chmod(0o644)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def foreign_message(path: Path) -> str:
    return (
        f"{path} is owned by nobody, not root: the data dir and its secrets must be root's alone; "
        f"run `chown root {path}` if nobody is trusted, else set HYPERSDK_DATA_DIR to a directory "
        "of root's own"
    )


def test_make_bootstrap_creates_a_private_data_dir_whatever_the_umask(tmp_path):
    """`make bootstrap` (migrate, then bootstrap_admin) in a new data dir under umask 022."""
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env |= {"HYPERSDK_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "hypersdk.settings"}
    env.pop("HYPERSDK_SECRET_KEY", None)
    script = (
        f"{sys.executable} manage.py migrate --noinput -v 0 && {sys.executable} manage.py bootstrap_admin"
    )
    with umask(0o022):
        done = subprocess.run(["sh", "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "API token: " in done.stdout
    assert mode(data_dir) == 0o700
    secrets = [data_dir / "secret_key", data_dir / "hypersdk.sqlite3"]
    secrets += [p for p in data_dir.iterdir() if p.name.startswith("hypersdk.sqlite3-")]
    for path in secrets:
        assert mode(path) == 0o600, path


def test_the_embedded_redis_dir_and_socket_are_private_whatever_the_umask(tmp_path):
    from hypersdk.lib.embedded_redis import start_embedded_redis, stop_embedded_redis

    with umask(0o022):
        process, _ = start_embedded_redis(tmp_path / "data")
    try:
        assert mode(tmp_path / "data") == 0o700
        assert mode(tmp_path / "data" / "redis.sock") & 0o077 == 0
    finally:
        stop_embedded_redis(process)


def test_vcenter_ca_files_are_private_whatever_the_umask(tmp_path, settings):
    from exports.job_runner import _ca_file
    from exports.models import VCenter

    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir(mode=0o700)
    with umask(0o022):
        ca = _ca_file(VCenter(name="vc1", ca_bundle="-----BEGIN CERTIFICATE-----\n"))
    assert mode(ca.parent) == 0o700
    assert mode(ca) == 0o600


def test_open_secrets_this_user_owns_are_tightened(tmp_path):
    data_dir = open_dir(tmp_path / "var")
    key = open_file(data_dir / "secret_key")
    database = open_file(data_dir / "hypersdk.sqlite3")
    wal = open_file(data_dir / "hypersdk.sqlite3-wal")
    ca_dir = open_dir(data_dir / "ca")
    ca = open_file(ca_dir / "vc1-0123.pem")
    done = secure_data_dir(data_dir, sqlite_database=database)
    assert [mode(p) for p in (data_dir, ca_dir)] == [0o700, 0o700]
    assert [mode(p) for p in (key, database, wal, ca)] == [0o600] * 4
    assert f"tightened {data_dir} from 0755 to 0700" in done.tightened
    assert f"tightened {key} from 0644 to 0600" in done.tightened
    assert secure_data_dir(data_dir, sqlite_database=database).tightened == []  # nothing left


@needs_root
def test_an_open_database_of_another_user_is_refused_with_the_fix(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    database = open_file(data_dir / "hypersdk.sqlite3", owner=NOBODY)
    with pytest.raises(InsecurePermissions) as refused:
        secure_data_dir(data_dir, sqlite_database=database)
    message = str(refused.value)
    assert "\n" not in message
    assert message == foreign_message(database)
    assert mode(database) == 0o644  # someone else's file is theirs to change


@needs_root
def test_a_secret_file_outside_the_data_dir_is_tightened_if_ours_else_only_warned_about(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    ours = open_file(tmp_path / "ours")
    mounted = open_file(tmp_path / "mounted", owner=NOBODY)  # e.g. an orchestrator's secret mount
    done = secure_data_dir(data_dir, secret_files=[ours, mounted])
    assert mode(ours) == 0o600
    assert mode(mounted) == 0o644
    assert done.warnings == [
        f"{mounted} is open to other users (mode 0644) and owned by nobody, not root: "
        f"run `chmod 600 {mounted}` as nobody"
    ]


@pytest.mark.django_db
def test_bootstrap_admin_tightens_an_open_data_dir_it_owns(tmp_path, settings, monkeypatch):
    monkeypatch.delenv("HYPERSDK_ADMIN_PASSWORD", raising=False)
    settings.DATA_DIR = open_dir(tmp_path / "var")
    key = open_file(settings.DATA_DIR / "secret_key")
    out = StringIO()
    call_command("bootstrap_admin", stdout=out)
    assert (mode(settings.DATA_DIR), mode(key)) == (0o700, 0o600)
    assert f"tightened {settings.DATA_DIR} from 0755 to 0700" in out.getvalue()
    assert "API token: " in out.getvalue()


@needs_root
@pytest.mark.django_db
def test_bootstrap_admin_refuses_an_open_data_dir_of_another_user_and_creates_nobody(tmp_path, settings):
    settings.DATA_DIR = open_dir(tmp_path / "var", owner=NOBODY)
    with pytest.raises(CommandError, match=rf"run `chown root {settings.DATA_DIR}` if nobody"):
        call_command("bootstrap_admin", stdout=StringIO())
    assert not get_user_model().objects.exists()


@needs_root
@pytest.mark.django_db
def test_hypervisord_refuses_an_open_data_dir_of_another_user_before_anything_else(tmp_path, settings):
    settings.DATA_DIR = open_dir(tmp_path / "var", owner=NOBODY)
    # An unusable --listen too: the data dir must be the first thing hypervisord looks at.
    with pytest.raises(CommandError) as refused:
        call_command("hypervisord", "--listen", "nowhere", stdout=StringIO(), stderr=StringIO())
    assert str(refused.value) == foreign_message(settings.DATA_DIR)


def test_processes_starting_at_once_agree_on_one_private_secret_key(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from hypersdk.lib.private_files import read_or_create_secret

    path = tmp_path / "data" / "secret_key"
    made = iter(range(1000))
    with umask(0o022), ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: read_or_create_secret(path, lambda: f"key-{next(made)}"), range(32)))
    assert len(keys) == 1 and keys != {""}
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary file left


@needs_root
def test_a_private_data_dir_of_another_user_is_refused_whatever_its_mode(tmp_path):
    # umask 077; mkdir; echo key > secret_key -- as another user: a key they chose and can read.
    data_dir = tmp_path / "att"
    data_dir.mkdir(mode=0o700)
    key = data_dir / "secret_key"
    key.write_text("chosen-by-nobody")
    key.chmod(0o600)
    os.chown(key, NOBODY, NOBODY)
    os.chown(data_dir, NOBODY, NOBODY)
    with pytest.raises(InsecurePermissions) as refused:
        secure_data_dir(data_dir)
    assert str(refused.value) == foreign_message(data_dir)
    with pytest.raises(InsecurePermissions, match="is owned by nobody"):
        read_or_create_secret(key, lambda: "ours")
    assert sorted(p.name for p in data_dir.iterdir()) == ["secret_key"]


@needs_root
def test_a_private_database_of_another_user_is_refused(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    database = open_file(data_dir / "hypersdk.sqlite3", owner=NOBODY)
    database.chmod(0o600)
    with pytest.raises(InsecurePermissions) as refused:
        secure_data_dir(data_dir, sqlite_database=database)
    assert str(refused.value) == foreign_message(database)


@pytest.mark.parametrize("target", ["missing", "someone_elses"])
def test_a_secret_key_planted_as_a_symbolic_link_is_refused(tmp_path, target):
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    (tmp_path / "someone_elses").write_text("chosen-key")
    key = data_dir / "secret_key"
    key.symlink_to(tmp_path / target)
    me = pwd.getpwuid(os.geteuid()).pw_name
    expected = (
        f"{key} is a symbolic link; secrets in the data dir must be {me}'s own files, never links: "
        f"remove it (`rm {key}`) and start again"
    )
    with pytest.raises(InsecurePermissions) as refused:
        read_or_create_secret(key, lambda: "ours")
    assert str(refused.value) == expected
    with pytest.raises(InsecurePermissions):
        secure_data_dir(data_dir)
    assert not (tmp_path / "missing").exists()  # nothing written through the link


@needs_root
@pytest.mark.django_db
def test_bootstrap_admin_writes_nothing_into_a_private_data_dir_of_another_user(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "att"
    settings.DATA_DIR.mkdir(mode=0o700)
    os.chown(settings.DATA_DIR, NOBODY, NOBODY)
    with pytest.raises(CommandError, match="is owned by nobody, not root"):
        call_command("bootstrap_admin", stdout=StringIO())
    assert list(settings.DATA_DIR.iterdir()) == []
    assert not get_user_model().objects.exists()


@needs_root
def test_manage_py_refuses_another_users_data_dir_in_one_line_before_writing_into_it(tmp_path):
    data_dir = tmp_path / "att"
    data_dir.mkdir(mode=0o700)
    os.chown(data_dir, NOBODY, NOBODY)
    env = {**os.environ, "HYPERSDK_DATA_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)
    env.pop("HYPERSDK_SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "check"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr == f"error: {foreign_message(data_dir)}\n"
    assert list(data_dir.iterdir()) == []
