"""hypervisord as it really runs: `manage.py hypervisord` with its embedded Redis, daphne and Celery."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path

import psutil
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from knox.models import AuthToken

from api_tokens.service import user_for_token
from hypersdk.lib.embedded_redis import answers_ping, start_embedded_redis, stop_embedded_redis
from tests.processes import LineCollectingProcess, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
DEADLINE = LineCollectingProcess.deadline
BIN = Path(sys.executable).parent


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def daemon_environment(data_dir: Path) -> dict[str, str]:
    """A private data dir and SQLite file; no REDIS_URL, so the Redis is the embedded one."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "REDIS_URL_FILE", "HYPERSDK_LISTEN"}}
    env.update(
        HYPERSDK_DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:///{data_dir / 'db.sqlite3'}",
        HYPERSDK_WORKER_CONCURRENCY="1",
        DJANGO_SETTINGS_MODULE="hypersdk.settings",
    )
    return env


class Hypervisord(LineCollectingProcess):
    """A real `manage.py hypervisord` subprocess; its output lines are collected as they arrive."""

    exit_fails_wait = True
    name = "hypervisord"

    def __init__(self, data_dir: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**daemon_environment(data_dir), **(env or {})}
        super().__init__(
            [sys.executable, "manage.py", "hypervisord", "--listen", f"127.0.0.1:{self.port}", *flags],
            cwd=BASE_DIR,
            env=self.env,
        )

    @property
    def redis_socket(self) -> Path:
        return self.data_dir / "redis.sock"

    def wait_until_serving(self) -> Hypervisord:
        self.wait_for(lambda: "HyperSDK listening on" in self.output, "the start-up line")
        self.wait_for(lambda: http_status(f"{self.url}/admin/login/") == 200, "the admin login page")
        return self

    def children(self) -> dict[str, psutil.Process]:
        """The direct children by name (redis, daphne, worker, beat)."""
        named = {}
        for child in psutil.Process(self.process.pid).children():
            try:
                cmdline = " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                continue
            for name, marker in (
                ("redis", "redis-server"),
                ("daphne", "daphne"),
                ("worker", " worker"),
                ("beat", " beat"),
            ):
                if marker in cmdline:
                    named[name] = child
        return named

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its children get SIGTERM from the kernel (PDEATHSIG)
                self.process.wait()


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def hypervisord(tmp_path_factory):
    """One full daemon shared by the read-only checks of this module.

    Its data dir starts open (0755), as `make run` of earlier releases left ./var."""
    data_dir = tmp_path_factory.mktemp("hv")
    data_dir.chmod(0o755)
    daemon = Hypervisord(data_dir)
    try:
        yield daemon.wait_until_serving()
    finally:
        daemon.close()


@pytest.fixture
def start_hypervisord(tmp_path_factory):
    started: list[Hypervisord] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Hypervisord:
        started.append(Hypervisord(tmp_path_factory.mktemp("hv"), *flags, env=env))
        return started[-1].wait_until_serving()

    yield start
    for daemon in started:
        daemon.close()


# The running daemon


def test_serves_the_admin_login_page(hypervisord):
    # The fixture waited for a 200 here; what it did not check is that the page is Django's
    # admin log-in form, served with its static files by daphne.
    with urllib.request.urlopen(f"{hypervisord.url}/admin/login/", timeout=5) as response:
        page = response.read().decode()
    assert 'name="username"' in page and 'name="password"' in page and "csrfmiddlewaretoken" in page
    assert http_status(f"{hypervisord.url}/static/admin/css/base.css") == 200


def test_prints_one_start_up_line_with_the_url(hypervisord):
    lines = [line for line in hypervisord.lines if "HyperSDK listening on" in line]
    assert len(lines) == 1
    assert f"http://127.0.0.1:{hypervisord.port}/" in lines[0]


def test_an_open_data_dir_is_tightened_and_its_secrets_are_private(hypervisord):
    data_dir = hypervisord.data_dir
    assert f"tightened {data_dir} from 0755 to 0700" in hypervisord.lines
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for secret in (data_dir / "secret_key", data_dir / "db.sqlite3"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret


def test_embedded_redis_answers_on_an_owner_only_socket(hypervisord):
    assert answers_ping(hypervisord.redis_socket)
    assert stat.S_IMODE(hypervisord.redis_socket.stat().st_mode) == 0o700


def test_embedded_redis_saves_nothing_and_listens_on_no_tcp_port(hypervisord):
    import redis

    client = redis.Redis(unix_socket_path=str(hypervisord.redis_socket))
    try:
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("port") == {"port": "0"}
    finally:
        client.close()


def test_celery_worker_answers_ping_on_the_embedded_broker(hypervisord):
    def worker_pongs() -> bool:
        result = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "hypersdk", "inspect", "ping", "--timeout", "5"],
            cwd=BASE_DIR,
            env=hypervisord.env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        return result.returncode == 0 and "pong" in result.stdout

    hypervisord.wait_for(worker_pongs, "the worker to answer `celery inspect ping`")
    hypervisord.wait_for(
        lambda: re.search(r"^worker: .*worker@\S+ ready\.", hypervisord.output, re.M), "ready"
    )


def test_beat_and_worker_run_with_prefixed_plain_output(hypervisord):
    hypervisord.wait_for(lambda: "beat: " in hypervisord.output, "beat output")
    assert set(hypervisord.children()) == {"redis", "daphne", "worker", "beat"}
    assert "\x1b[" not in hypervisord.output


def test_second_daemon_on_the_same_data_dir_is_refused(hypervisord):
    result = subprocess.run(
        [sys.executable, "manage.py", "hypervisord", "--listen", f"127.0.0.1:{free_port()}"],
        cwd=BASE_DIR,
        env=hypervisord.env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode != 0
    assert "already running" in result.stderr
    assert answers_ping(hypervisord.redis_socket)


def test_killed_daphne_is_restarted_and_serves_again(hypervisord):
    daphne = hypervisord.children()["daphne"]
    daphne.kill()
    hypervisord.wait_for(lambda: "daphne exited (signal SIGKILL)" in hypervisord.output, "the exit line")
    hypervisord.wait_for(lambda: "hypervisord: restarting daphne" in hypervisord.output, "the restart line")
    new = hypervisord.wait_for(
        lambda: (d := hypervisord.children().get("daphne")) is not None and d.pid != daphne.pid and d,
        "a new daphne",
    )
    hypervisord.wait_for(lambda: http_status(f"{hypervisord.url}/admin/login/") == 200, "the page again")
    assert alive(new)


# Start and stop


def test_sigterm_stops_every_child_and_exits_zero(start_hypervisord):
    daemon = start_hypervisord()
    daemon.wait_for(lambda: " ready." in daemon.output, "the worker")
    processes = daemon.descendants()
    assert {"redis", "daphne", "worker", "beat"} <= set(daemon.children())

    assert daemon.stop() == 0

    assert not [p for p in processes if alive(p)]
    assert not port_is_open(daemon.port)
    assert not daemon.redis_socket.exists()
    out = daemon.output
    assert out.index("worker stopped") < out.index("stopping redis")
    assert out.rstrip().endswith("hypervisord: all children stopped")


def test_no_worker_no_beat_runs_only_redis_and_daphne(start_hypervisord):
    daemon = start_hypervisord("--no-worker", "--no-beat")
    assert set(daemon.children()) == {"redis", "daphne"}
    assert "no worker" in daemon.output
    assert daemon.stop() == 0


def test_with_redis_url_no_redis_is_embedded(start_hypervisord, tmp_path):
    redis_process, url = start_embedded_redis(tmp_path)
    try:
        daemon = start_hypervisord("--no-beat", env={"REDIS_URL": url})
        daemon.wait_for(lambda: " ready." in daemon.output, "the worker on the external Redis")
        assert set(daemon.children()) == {"daphne", "worker"}
        assert "external Redis" in daemon.output
        assert not daemon.redis_socket.exists()
        assert daemon.stop() == 0
        assert answers_ping(tmp_path / "redis.sock")  # not ours to stop
    finally:
        stop_embedded_redis(redis_process)


def test_bad_listen_address_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "hypervisord", "--listen", "localhost"],
        cwd=BASE_DIR,
        env=daemon_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode != 0
    assert "HOST:PORT" in result.stderr
    assert not (tmp_path / "redis.sock").exists()


# The embedded Redis helper the suite uses


def test_start_embedded_redis_returns_a_unix_url_that_answers(tmp_path):
    process, url = start_embedded_redis(tmp_path)
    try:
        assert url == f"unix://{tmp_path / 'redis.sock'}"
        assert answers_ping(tmp_path / "redis.sock")
    finally:
        stop_embedded_redis(process)
    assert process.returncode == 0
    assert not (tmp_path / "redis.sock").exists()


# bootstrap_admin


def bootstrap_admin() -> str:
    out = StringIO()
    call_command("bootstrap_admin", stdout=out)
    return out.getvalue()


@pytest.fixture
def no_admin_password(monkeypatch):
    monkeypatch.delenv("HYPERSDK_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("HYPERSDK_ADMIN_PASSWORD_FILE", raising=False)


@pytest.mark.django_db
def test_bootstrap_admin_creates_admin_and_prints_password_and_token_once(no_admin_password):
    first = bootstrap_admin()
    password = re.search(r"^password: (\S+)$", first, re.M).group(1)
    token = re.search(r"^API token: (\S+)$", first, re.M).group(1)
    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_superuser and admin.is_staff
    assert user_for_token(token) == admin

    second = bootstrap_admin()
    assert len(second.strip().splitlines()) == 1
    assert "exists" in second
    assert password not in second and token not in second
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_bootstrap_admin_uses_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("HYPERSDK_ADMIN_PASSWORD", "correct horse battery staple")
    out = bootstrap_admin()
    assert authenticate(username="admin", password="correct horse battery staple") is not None
    assert "correct horse battery staple" not in out
    assert "API token: " in out


@pytest.mark.django_db
def test_bootstrap_admin_leaves_an_existing_superuser_alone(no_admin_password):
    get_user_model().objects.create_superuser("root", "", "pw-of-root")
    out = bootstrap_admin()
    assert out.strip() == "an admin user exists (root); nothing to do"
    assert not get_user_model().objects.filter(username="admin").exists()
    assert not AuthToken.objects.exists()


@pytest.mark.django_db
def test_bootstrap_admin_refuses_to_take_over_a_plain_user_named_admin(no_admin_password):
    get_user_model().objects.create_user("admin", "", "their-own-password")
    with pytest.raises(CommandError, match="not a superuser"):
        bootstrap_admin()
    assert authenticate(username="admin", password="their-own-password") is not None


def test_the_cli_shows_the_daemons_uptime_locally_as_remotely(hypervisord):
    env = hypervisord.env
    local = subprocess.run(
        [str(BIN / "hyperexport"), "--daemon-status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert local.returncode == 0, local.stderr
    assert re.search(r"^Daemon: +ok, version \S+, up \d", local.stdout, re.M), local.stdout
    record = json.loads((hypervisord.data_dir / "hypervisord.json").read_text())
    assert record["pid"] == hypervisord.process.pid
