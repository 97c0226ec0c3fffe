"""The data dir and the secrets in it are the daemon's user's alone: 0700 dirs, 0600 files.

Created with those modes whatever the umask (a mode given to open/mkdir is only ever narrowed
by the umask). ``secure_data_dir`` checks what already exists, for ``hypervisord`` and
``bootstrap_admin``: what this user owns is tightened; what someone else owns and others may
read is refused with the command that fixes it, since chmod-ing another user's file is theirs
to decide.
"""

from __future__ import annotations

import errno
import os
import pwd
import secrets
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hypersdk.lib.env import ConfigError

DIR_MODE = 0o700
FILE_MODE = 0o600
# Any permission for group or others: a secret must not even be listable by them.
_OPEN_TO_OTHERS = 0o077
SECRET_KEY_NAME = "secret_key"
CA_DIR_NAME = "ca"
REDIS_SOCKET_NAME = "redis.sock"
# SQLite keeps the database in these files beside it (journal, write-ahead log, shared memory).
SQLITE_COMPANIONS = ("", "-journal", "-wal", "-shm")
# Secrets a daemon may read from files outside the data dir (settings' ``*_FILE``).
SECRET_FILE_SETTINGS = (
    "HYPERSDK_SECRET_KEY_FILE",
    "HYPERSDK_ADMIN_PASSWORD_FILE",
    "DATABASE_URL_FILE",
    "REDIS_URL_FILE",
)


class InsecurePermissions(ConfigError):
    """A secret is another user's, a symbolic link, or open to others and not ours to change;
    ``str(exc)`` is one line that says the fix."""


def make_private_dir(path: Path) -> Path:
    """Create ``path`` as 0700 if it does not exist (its parents as usual); return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    return path


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty as 0600 unless it exists; True if this call created it."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE))
    except FileExistsError:
        return False
    return True


def write_new_private_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new 0600 file ``path``, whole or not at all; an existing file is
    kept (another process got there first). True if this call's data is the one in place."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        try:
            os.link(temporary, path)  # unlike a rename, refuses to replace: the first writer wins
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path``; if there is none yet, ``make()`` one and keep it there (0600).

    Raises InsecurePermissions if ``path`` (or its dir) is a symbolic link or another user's:
    a key someone else chose, or can read, is no secret.
    """
    path = Path(path)
    make_private_dir(path.parent)
    refuse_foreign(path.parent)
    try:
        return _read_own_file(path)
    except FileNotFoundError:
        pass
    write_new_private_file(path, make().encode())
    return _read_own_file(path)


def _read_own_file(path: Path) -> str:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link: explained by refuse_foreign
            refuse_foreign(path)
        raise
    with os.fdopen(descriptor, "rb") as handle:
        # Judged on the opened file itself, so a swap between the check and the read is moot.
        _judge(path, os.fstat(handle.fileno()))
        return handle.read().decode().strip()


def refuse_foreign(path: Path) -> None:
    """Raise InsecurePermissions if ``path`` is a symbolic link or not this user's (any mode).

    A missing path passes. Used before anything is read from or written into the data dir.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    _judge(Path(path), info)


def refuse_foreign_data_dir(data_dir: Path, sqlite_database: str | os.PathLike | None = None) -> None:
    """``refuse_foreign`` for the data dir and each of its secrets (see ``data_dir_secrets``)."""
    for path in data_dir_secrets(data_dir, sqlite_database):
        refuse_foreign(path)


def _judge(path: Path, info: os.stat_result) -> None:
    me = _user_name(os.geteuid())
    if stat.S_ISLNK(info.st_mode):
        raise InsecurePermissions(
            f"{path} is a symbolic link; secrets in the data dir must be {me}'s own files, never "
            f"links: remove it (`rm {path}`) and start again"
        )
    if info.st_uid != os.geteuid():
        owner = _user_name(info.st_uid)
        raise InsecurePermissions(
            f"{path} is owned by {owner}, not {me}: the data dir and its secrets must be {me}'s "
            f"alone; run `chown {me} {path}` if {owner} is trusted, else set HYPERSDK_DATA_DIR to "
            f"a directory of {me}'s own"
        )


def prepare_sqlite_database(name: str | os.PathLike) -> None:
    """Create the SQLite file as 0600 before SQLite would create it with the umask's mode
    (its journal and WAL files then copy that mode). A missing directory is SQLite's to report."""
    if str(name) == ":memory:" or str(name).startswith("file:"):
        return
    try:
        create_private_file(Path(name))
    except OSError:
        pass


@dataclass
class Inspection:
    """What ``secure_data_dir`` did: a line per tightened path, a line per warning."""

    tightened: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def data_dir_secrets(data_dir: Path, sqlite_database: str | os.PathLike | None) -> list[Path]:
    """The secret paths of a data dir (whether they exist yet or not): dirs first."""
    data_dir = Path(data_dir)
    ca_dir = data_dir / CA_DIR_NAME
    paths = [data_dir, ca_dir, data_dir / SECRET_KEY_NAME, data_dir / REDIS_SOCKET_NAME]
    try:
        paths += sorted(ca_dir.iterdir())
    except OSError:  # none yet, or another user's private dir: nothing in it to judge
        pass
    if sqlite_database and str(sqlite_database) != ":memory:":
        paths += [Path(f"{sqlite_database}{suffix}") for suffix in SQLITE_COMPANIONS]
    return paths


def secure_data_dir(
    data_dir: Path,
    *,
    sqlite_database: str | os.PathLike | None = None,
    secret_files: Iterable[Path] = (),
) -> Inspection:
    """Make the data dir's secrets private; raise InsecurePermissions for what cannot be.

    ``secret_files`` are secrets the administrator keeps elsewhere (``*_FILE`` settings): they
    are tightened when ours, else only warned about, since a container's or an orchestrator's
    mounted secrets are often root's and readable by all inside their sandbox.
    """
    # Ownership first, for all of them, before anything is created or changed in the dir.
    refuse_foreign_data_dir(data_dir, sqlite_database)
    make_private_dir(data_dir)
    done = Inspection()
    for path in data_dir_secrets(data_dir, sqlite_database):
        line = _tighten(path)
        if line:
            done.tightened.append(line)
    for path in secret_files:
        try:
            line = _tighten(Path(path))
        except InsecurePermissions as exc:
            done.warnings.append(str(exc))
        else:
            if line:
                done.tightened.append(line)
    return done


def configured_secret_files(environ: dict[str, str] | None = None) -> list[Path]:
    environ = os.environ if environ is None else environ
    return [Path(environ[name]) for name in SECRET_FILE_SETTINGS if environ.get(name)]


def _tighten(path: Path) -> str | None:
    try:
        # Links are followed here only for the *_FILE secrets kept outside the data dir (an
        # orchestrator's mounts are links); the data dir's own were refused by refuse_foreign.
        info = os.stat(path)
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(info.st_mode)
    if not mode & _OPEN_TO_OTHERS:
        return None
    wanted = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
    if info.st_uid != os.geteuid():
        owner = _user_name(info.st_uid)
        raise InsecurePermissions(
            f"{path} is open to other users (mode {mode:04o}) and owned by {owner}, not "
            f"{_user_name(os.geteuid())}: run `chmod {wanted:o} {path}` as {owner}"
        )
    os.chmod(path, mode & ~_OPEN_TO_OTHERS)
    return f"tightened {path} from {mode:04o} to {mode & ~_OPEN_TO_OTHERS:04o}"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def secure_configured_data_dir() -> Inspection:
    """``secure_data_dir`` for this process's settings: its data dir, its SQLite database (if
    that is the backend) and the ``*_FILE`` secrets in its environment."""
    from django.conf import settings
    from django.db import connection

    sqlite = connection.settings_dict["NAME"] if connection.vendor == "sqlite" else None
    return secure_data_dir(settings.DATA_DIR, sqlite_database=sqlite, secret_files=configured_secret_files())
