"""Settings for running behind a TLS reverse proxy, derived from the environment.

``HYPERSDK_PUBLIC_URL`` (``https://hypersdk.example.com``) is the URL users reach us at: its
host is allowed and it is a trusted origin for CSRF and websockets. When it is https, the
proxy's ``X-Forwarded-Proto: https`` marks a request as secure (``HYPERSDK_PROXY_SSL_HEADER``
names another header, or empty to turn it off) and the session and CSRF cookies are Secure
(``HYPERSDK_SECURE_COOKIES`` overrides). Only the proxy must be able to reach the daemon's
port when the header is trusted: it must set (not pass through) the header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from hypersdk.lib.env import env_bool, env_header_name, env_list, env_public_url


def from_environment(allowed_hosts: list[str]) -> dict[str, Any]:
    """ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, SECURE_PROXY_SSL_HEADER and the cookie flags;
    raises ConfigError for a bad value."""
    public_url = env_public_url("HYPERSDK_PUBLIC_URL")
    https = public_url.startswith("https://")
    hosts = list(allowed_hosts)
    if public_url:
        host = urlsplit(public_url).hostname or ""
        hosts.append(f"[{host}]" if ":" in host else host)
    header = env_header_name("HYPERSDK_PROXY_SSL_HEADER", "X-Forwarded-Proto" if https else "")
    secure_cookies = env_bool("HYPERSDK_SECURE_COOKIES", https)
    return {
        "HYPERSDK_PUBLIC_URL": public_url,
        "ALLOWED_HOSTS": hosts,
        "CSRF_TRUSTED_ORIGINS": [
            *([public_url] if public_url else []),
            *env_list("HYPERSDK_CSRF_TRUSTED_ORIGINS", []),
        ],
        "SECURE_PROXY_SSL_HEADER": ("HTTP_" + header.upper().replace("-", "_"), "https") if header else None,
        "SESSION_COOKIE_SECURE": secure_cookies,
        "CSRF_COOKIE_SECURE": secure_cookies,
    }
