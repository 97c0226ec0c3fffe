"""Small strict parsers for settings read from the environment.

A bad value stops start-up with a message naming the variable, rather than being
silently replaced by a default. Secrets may also come from ``<NAME>_FILE``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable holds a value we cannot use."""


def load_settings_or_exit() -> None:
    """Load Django's settings now; a ConfigError there ends the process with its one line
    (``error: ...``, exit status 2) instead of a traceback from deep inside an import."""
    import sys

    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - touching a setting imports the settings module
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None


# A console script serves no admin pages: Django's admin without autodiscovery, so the
# ModelAdmins (which import every service, DRF's and Celery's machinery) are not loaded.
_ADMIN = "django.contrib.admin"
_ADMIN_WITHOUT_AUTODISCOVERY = "django.contrib.admin.apps.SimpleAdminConfig"
# Nor does it use beat's own tables (no model of ours relates to them), whose models import
# all of Celery.
_NOT_IN_CONSOLE_SCRIPTS = ("django_celery_beat",)
# DRF imports these if present, for what no console script uses: PostgreSQL's array and range
# serializer fields (our models have none), requests (its test client), YAML and Pygments (the
# browsable API). Absent, a CLI starts about 0.2 s sooner; a process that imported them
# already keeps them.
_OPTIONAL_FOR_DRF = ("requests", "django.contrib.postgres.fields", "yaml", "pygments")


def setup_django_or_exit() -> None:
    """Settings and every app loaded, for a console script about to use the ORM (once; a
    ConfigError ends the process as in ``load_settings_or_exit``). The admin's models load,
    its ModelAdmins and beat's tables do not."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
    load_settings_or_exit()
    from django.apps import apps
    from django.conf import settings

    if not apps.ready:
        import sys

        import django

        for module in _OPTIONAL_FOR_DRF:
            sys.modules.setdefault(module, None)  # None: "import" raises ImportError
        settings.INSTALLED_APPS = [
            _ADMIN_WITHOUT_AUTODISCOVERY if app == _ADMIN else app
            for app in settings.INSTALLED_APPS
            if app not in _NOT_IN_CONSOLE_SCRIPTS
        ]
        django.setup()


def env_str(name: str, default: str = "") -> str:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_path}: {exc.strerror}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false, yes/no), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> list:
    """Comma-separated IP addresses or CIDR networks (``10.0.0.0/8, ::1``)."""
    import ipaddress

    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address or network") from None
    return networks


_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")


def env_header_name(name: str, default: str) -> str:
    """An HTTP header name such as ``X-Forwarded-For``; empty when set to an empty string."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip()
    if value and not _HEADER_NAME.fullmatch(value):
        raise ConfigError(f"{name} must be an HTTP header name such as X-Forwarded-Proto, got {raw!r}")
    return value


def env_public_url(name: str) -> str:
    """The URL users reach us at, ``scheme://host[:port]`` (a path of ``/`` at most); '' unset."""
    from urllib.parse import urlsplit

    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"{name} must be a URL such as https://hypersdk.example.com, got {raw!r}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{name} must be an http:// or https:// URL with a host, got {raw!r}")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in {"", "/"}:
        raise ConfigError(f"{name} must be scheme://host[:port] only (no path, user or query), got {raw!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def env_abs_paths(name: str) -> list[str]:
    """A comma-separated list of absolute paths (normalised); a relative one is a ConfigError."""
    paths = env_list(name, [])
    for path in paths:
        if not os.path.isabs(path):
            raise ConfigError(f"{name} must list absolute paths, got {path!r}")
    return [os.path.normpath(path) for path in paths]
