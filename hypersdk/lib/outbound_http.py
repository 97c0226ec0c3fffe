"""The one way HyperSDK makes HTTP requests to addresses users give it (webhook receivers).

Every request has a total deadline, never follows a redirect, speaks only http/https, and
refuses loopback, private, link-local (cloud metadata) and every other address IANA's
special-purpose registries do not list as globally reachable unless an allowlist of networks
admits them (``hypersdk.lib.public_addresses`` decides). The address is checked where the socket is opened:
``GuardedBackend.connect_tcp`` resolves the name once, checks every address, then connects to
that exact address, while TLS still verifies the certificate against the name (SNI) and the
Host header keeps the name. No second lookup happens, so DNS rebinding has no gap to use.
It is built on httpcore (httpx's engine) directly: no proxy from the environment, no redirects.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from hypersdk.lib.public_addresses import (
    Address,
    Network,
    describe,
    parse_networks,
    parse_networks_cached,
    permitted,
)

__all__ = [
    "Address",
    "Network",
    "OutboundError",
    "OutboundResponse",
    "OutboundTimeout",
    "RefusedDestination",
    "check_address",
    "check_url",
    "describe",
    "parse_networks",
    "post",
    "resolve",
]

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("outbound_deadline", default=None)


class OutboundError(Exception):
    """The request could not be made or had no answer; the message is one line."""


class RefusedDestination(OutboundError):
    """The URL or the address it leads to is not one HyperSDK may send to."""


class OutboundTimeout(OutboundError):
    pass


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    headers: dict[str, str]  # names in lower case
    body: bytes  # at most ``max_body`` bytes of it
    elapsed: float  # seconds, from connecting (or reusing a connection) to the body read

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


def check_url(url: str) -> httpx.URL:
    """Parse a URL we may send to: http or https, with a host. Raises RefusedDestination."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise RefusedDestination(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise RefusedDestination(
            f"only http and https URLs are allowed, not {parsed.scheme or 'no scheme'!r}"
        )
    if not parsed.host:
        raise RefusedDestination("the URL has no host")
    return parsed


def resolve(host: str, port: int, timeout: float | None = None) -> list[Address]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    future = _resolver().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except FutureTimeout:
        raise OutboundTimeout(f"resolving {host} timed out") from None
    except (OSError, UnicodeError) as exc:
        raise OutboundError(f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from None
    addresses: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_address(
    host: str, port: int, allowed: Sequence[Network], timeout: float | None = None
) -> list[Address]:
    """Resolve ``host``; refuse it if any address it resolves to is not permitted."""
    addresses = resolve(host, port, timeout)
    for address in addresses:
        if not permitted(address, allowed):
            shown = f"{host} is" if host == str(address) else f"{host} resolves to {address},"
            raise RefusedDestination(
                f"{shown} {describe(address)}: refused (HYPERSDK_WEBHOOK_ALLOWED_NETWORKS can allow it)"
            )
    return addresses


def post(
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout: float,
    allowed_networks: Sequence[str] = (),
    ssl_context: ssl.SSLContext | None = None,
    max_body: int = 64 * 1024,
) -> OutboundResponse:
    """POST ``content`` as is; ``timeout`` bounds the whole exchange. Raises OutboundError."""
    parsed = check_url(url)
    pool = _pool(parse_networks_cached(tuple(allowed_networks)), ssl_context)
    request_headers = [(b"Host", parsed.netloc), *((k.encode(), v.encode()) for k, v in headers.items())]
    target = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    started = time.monotonic()
    token = _deadline.set(started + timeout)
    extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
    try:
        with pool.stream(
            "POST", target, headers=request_headers, content=content, extensions=extensions
        ) as reply:
            body = bytearray()
            for chunk in reply.iter_stream():
                body += chunk
                if len(body) >= max_body:
                    break
            return OutboundResponse(
                status_code=reply.status,
                headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in reply.headers},
                body=bytes(body[:max_body]),
                elapsed=time.monotonic() - started,
            )
    except OutboundError:
        raise
    except httpcore.TimeoutException:
        raise OutboundTimeout(f"no complete answer within {timeout:g} s") from None
    except httpcore.ConnectError as exc:
        raise OutboundError(
            f"cannot connect to {parsed.host}:{parsed.port or _default_port(parsed)}: {exc}"
        ) from None
    except (httpcore.NetworkError, httpcore.ProtocolError, ssl.SSLError) as exc:
        raise OutboundError(f"{exc.__class__.__name__}: {exc}") from None
    finally:
        _deadline.reset(token)


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _remaining(timeout: float | None) -> float | None:
    """The operation's timeout, cut to what is left of the request's total deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        return 0.0
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write stops at the current request's deadline,
    so a receiver trickling a byte at a time cannot hold a worker past the timeout."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = _remaining(timeout)
        if left == 0.0:
            raise httpcore.ReadTimeout("deadline reached")
        return self._inner.read(max_bytes, left)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        left = _remaining(timeout)
        if left == 0.0:
            raise httpcore.WriteTimeout("deadline reached")
        self._inner.write(buffer, left)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _remaining(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Resolve once, check every address, connect to a checked address by number."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = tuple(allowed)
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = check_address(host, port, self.allowed, _remaining(timeout))
        error: Exception | None = None
        for address in addresses:
            left = _remaining(timeout)
            if left == 0.0:
                raise httpcore.ConnectTimeout("deadline reached")
            try:
                stream = self._backend.connect_tcp(str(address), port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        raise httpcore.ConnectError(str(error) if error else f"{host} has no address")

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise RefusedDestination("unix sockets are not an outbound destination")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


_pools: dict[tuple[int, tuple[Network, ...], int], httpcore.ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool(allowed: tuple[Network, ...], ssl_context: ssl.SSLContext | None) -> httpcore.ConnectionPool:
    """One keep-alive pool per policy and TLS context in each process (a worker reuses it;
    the pid in the key keeps a forked pool child off its parent's sockets)."""
    key = (os.getpid(), allowed, id(ssl_context) if ssl_context is not None else 0)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = httpcore.ConnectionPool(
                ssl_context=ssl_context or ssl.create_default_context(),
                max_connections=50,
                max_keepalive_connections=20,
                keepalive_expiry=30.0,
                network_backend=GuardedBackend(allowed),
            )
        return pool


_resolvers: dict[int, ThreadPoolExecutor] = {}


def _resolver() -> ThreadPoolExecutor:
    """getaddrinfo has no timeout of its own: it runs here so the request's deadline bounds it."""
    with _pools_lock:
        executor = _resolvers.get(os.getpid())
        if executor is None:
            executor = _resolvers[os.getpid()] = ThreadPoolExecutor(4, thread_name_prefix="outbound-dns")
        return executor
