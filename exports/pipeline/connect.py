"""The one vSphere session helper: where the vCenter is, how to trust it, how to log in.

The target comes from govc's environment variables (``GOVC_URL``, ``GOVC_USERNAME``,
``GOVC_PASSWORD``, ``GOVC_INSECURE``, ``GOVC_TLS_CA_CERTS``) or explicit arguments.
TLS is verified unless insecure is asked for. The password never appears in a message.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree
from xml.parsers.expat import ExpatError

from exports.pipeline.errors import UnreadableAnswer, VCenterConnectionError
from hypersdk.lib.env import env_int

_TRUE = {"1", "true", "yes", "on"}
# What reading an answer that is not the SOAP vCenter should send raises: pyvmomi's parser
# (expat), the inventory's (ElementTree), and the inventory's own decoding.
UNREADABLE = (ExpatError, ElementTree.ParseError, UnreadableAnswer)
# Every SOAP call gets a socket timeout: without one, a vCenter that stops answering (hung,
# network partition) blocks the lease keepalive, abort and the worker thread forever.
SOAP_CALL_TIMEOUT = 120.0
# Seconds the connect phase (TCP connect, TLS handshake, each request of the API version
# probe and the log-in) may wait on the vCenter: a host that accepts TCP and never finishes
# TLS (a tarpit, a firewall) would otherwise hold the request or the worker forever.
CONNECT_TIMEOUT_ENV = "HYPERSDK_VCENTER_CONNECT_TIMEOUT"
CONNECT_TIMEOUT_DEFAULT = 30
# Pooled connections idle this long are closed rather than reused (a vCenter drops them).
POOL_IDLE_SECONDS = 30.0
# vCenter's list of the API versions it speaks; a larger answer is no vCenter's.
_VERSIONS_PATH = "/sdk/vimServiceVersions.xml"
_VERSIONS_MAX_BYTES = 1 << 20


READ_SECONDS_ENV = "HYPERSDK_INVENTORY_READ_SECONDS"
READ_SECONDS_DEFAULT = 300
# What a reader who is waiting (the inventory, a preflight, a dry run) gives each SOAP call: an
# export's own calls wait SOAP_CALL_TIMEOUT, a person at a prompt no longer than this.
INTERACTIVE_CALL_TIMEOUT = 30.0


def read_seconds() -> float:
    """``HYPERSDK_INVENTORY_READ_SECONDS`` (seconds, 1-86400; default 300): how long a whole
    read for a waiting reader (an inventory read, a preflight, a dry run) may take."""
    return float(env_int(READ_SECONDS_ENV, READ_SECONDS_DEFAULT, minimum=1, maximum=86400))


def connect_timeout() -> float:
    """``HYPERSDK_VCENTER_CONNECT_TIMEOUT`` (seconds, 1-3600; default 30). A bad value is a
    ConfigError naming the variable (settings read it at start-up too, so it fails there first)."""
    return float(env_int(CONNECT_TIMEOUT_ENV, CONNECT_TIMEOUT_DEFAULT, minimum=1, maximum=3600))


@dataclass(frozen=True)
class VCenterTarget:
    host: str
    port: int = 443
    username: str = ""
    password: str = field(default="", repr=False)
    insecure: bool = False
    ca_file: str | None = None
    # What to do when its certificate is not trusted, where this vCenter was configured (the
    # admin's fields for one added there); None: govc's variables.
    tls_advice: str | None = field(default=None, compare=False)

    @property
    def display(self) -> str:
        """``user@host`` for messages: never the password."""
        return f"{self.username}@{self.host}" if self.username else self.host

    @property
    def netloc(self) -> str:
        return self.host if self.port == 443 else f"{self.host}:{self.port}"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, url: str | None = None, **overrides: object
    ) -> VCenterTarget:
        """Read govc's variables; ``url`` replaces GOVC_URL, keyword ``overrides`` not None win."""
        env = os.environ if env is None else env
        raw_url = (url or env.get("GOVC_URL", "")).strip()
        if not raw_url and not overrides.get("host"):
            raise VCenterConnectionError(
                "no vCenter given: set GOVC_URL (https://user:pass@host/sdk or a host name)"
            )
        target = cls._parse_url(raw_url) if raw_url else cls(host="")
        target = replace(
            target,
            username=env.get("GOVC_USERNAME") or target.username,
            password=env.get("GOVC_PASSWORD") or target.password,
            insecure=env.get("GOVC_INSECURE", "").strip().lower() in _TRUE,
            ca_file=env.get("GOVC_TLS_CA_CERTS") or None,
        )
        chosen = {key: value for key, value in overrides.items() if value is not None}
        return replace(target, **chosen)  # type: ignore[arg-type]

    @classmethod
    def _parse_url(cls, raw_url: str) -> VCenterTarget:
        try:
            url = urlsplit(raw_url if "://" in raw_url else f"https://{raw_url}")
        except ValueError as exc:  # an unclosed [IPv6] bracket, say
            raise VCenterConnectionError(f"GOVC_URL is not a URL: {exc}") from None
        if url.scheme not in {"https", "http"} or not url.hostname:
            raise VCenterConnectionError("GOVC_URL must look like https://user:pass@host/sdk or host")
        try:
            port = url.port or 443
        except ValueError:
            raise VCenterConnectionError("GOVC_URL has an invalid port") from None
        return cls(
            host=url.hostname,
            port=port,
            username=unquote(url.username or ""),
            password=unquote(url.password or ""),
        )

    def ssl_context(self) -> ssl.SSLContext:
        if self.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.ca_file and not os.path.exists(self.ca_file):
            raise VCenterConnectionError(f"GOVC_TLS_CA_CERTS: no such file {self.ca_file}")
        return ssl.create_default_context(cafile=self.ca_file)


def _tls_help(target: VCenterTarget, exc: BaseException) -> VCenterConnectionError:
    reason = getattr(exc, "verify_message", None) or str(exc)
    advice = target.tls_advice or (
        "pass its CA with GOVC_TLS_CA_CERTS=<ca.pem>, or set GOVC_INSECURE=1 to skip verification"
    )
    return VCenterConnectionError(f"TLS verification of {target.netloc} failed ({reason}): {advice}")


def unreadable(target: VCenterTarget, exc: BaseException) -> VCenterConnectionError:
    """One line for an answer of ``target`` that cannot be read (never a traceback, never a secret)."""
    reason = " ".join((str(exc) or type(exc).__name__).split())[:300]
    return VCenterConnectionError(f"vCenter {target.netloc} sent an answer that cannot be read: {reason}")


def _not_vsphere(target: VCenterTarget) -> VCenterConnectionError:
    return VCenterConnectionError(f"{target.netloc} is down or is not a vSphere endpoint")


def _api_version(target: VCenterTarget, context: ssl.SSLContext, timeout: float) -> str:
    """The newest vim25 API version both pyVmomi and the server speak, read from the server's
    vimServiceVersions.xml with ``timeout`` on every socket wait (pyVim's SmartConnect reads it
    with none, so a tarpit hangs it forever). VCenterConnectionError when it is no vSphere."""
    from pyVmomi.VmomiSupport import GetServiceVersions, versionIdMap

    conn = http.client.HTTPSConnection(target.host, target.port, context=context, timeout=timeout)
    try:
        conn.request("GET", _VERSIONS_PATH)
        response = conn.getresponse()
        body = response.read(_VERSIONS_MAX_BYTES + 1) if response.status == 200 else b""
    finally:
        conn.close()
    try:
        root = ElementTree.fromstring(body) if 0 < len(body) <= _VERSIONS_MAX_BYTES else None
    except ElementTree.ParseError:
        root = None
    if root is None or root.tag != "namespaces":
        raise _not_vsphere(target)
    offered = {version.text for version in root.iter("version")}
    for wanted in GetServiceVersions("vim25"):  # newest first
        if versionIdMap.get(wanted) in offered:
            return wanted
    raise VCenterConnectionError(f"{target.netloc} speaks no vSphere API version this program knows")


# What pyvmomi's reading of an answer raises on one its API version does not describe (an
# unknown managed object type or element, a value of the wrong shape), besides its parse errors.
_DECODING = (ExpatError, KeyError, AttributeError, TypeError, IndexError)


def _guard_answers(service_instance) -> None:
    """Every SOAP call of this session turns an answer pyvmomi cannot decode into
    UnreadableAnswer (one line, at the door), whatever call made it: a traceback of
    pyvmomi's internals helps nobody. vCenter's faults and the network's errors pass as they are."""
    stub = service_instance._stub
    invoke = stub.InvokeMethod

    def invoke_guarded(mo, info, args, outerStub=None):  # noqa: N803 - pyvmomi's own name
        try:
            return invoke(mo, info, args, outerStub)
        except _DECODING as exc:
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise UnreadableAnswer(f"the answer to {info.wsdlName} ({what[:120]})") from None

    stub.InvokeMethod = invoke_guarded


def _set_call_timeout(service_instance, seconds: float) -> None:
    """After log-in, SOAP calls wait up to ``seconds`` (the log-in itself had the connect timeout):
    new connections get it, and so does the one the log-in left in the pool."""
    stub = service_instance._stub
    stub.schemeArgs["timeout"] = seconds
    for conn, _ in stub.pool:
        conn.timeout = seconds
        if conn.sock is not None:
            conn.sock.settimeout(seconds)


def connect(
    target: VCenterTarget, *, timeout: float | None = None, call_timeout: float = SOAP_CALL_TIMEOUT
):  # -> vim.ServiceInstance
    """Log in and return a ServiceInstance, mapping every failure to one clear line.

    ``timeout`` (seconds; default ``connect_timeout()``) bounds each wait of the connect phase:
    the TCP connect, the TLS handshake, the API version probe and the log-in's SOAP calls.
    ``call_timeout`` bounds each SOAP call after that.
    """
    from pyVim.connect import Connect
    from pyVmomi import vim, vmodl

    if not target.username:
        raise VCenterConnectionError(
            f"no user name for {target.host}: set GOVC_USERNAME or put it in GOVC_URL"
        )
    timeout = connect_timeout() if timeout is None else timeout
    try:
        context = target.ssl_context()
        service_instance = Connect(
            host=target.host,
            port=target.port,
            user=target.username,
            pwd=target.password,
            version=_api_version(target, context, timeout),
            sslContext=context,
            connectionPoolTimeout=POOL_IDLE_SECONDS,
            httpConnectionTimeout=timeout,
            disableSslCertValidation=target.insecure,
        )
        _set_call_timeout(service_instance, call_timeout)
        _guard_answers(service_instance)
        return service_instance
    except VCenterConnectionError:
        raise
    except vim.fault.InvalidLogin:
        raise VCenterConnectionError(f"authentication failed for {target.display}") from None
    except ssl.SSLCertVerificationError as exc:
        raise _tls_help(target, exc) from None
    except ssl.SSLError as exc:
        if "WRONG_VERSION_NUMBER" in str(exc) or "wrong version number" in str(exc):
            raise _not_vsphere(target) from None  # a plain-HTTP server answered the TLS hello
        raise _tls_help(target, exc) from None
    except socket.gaierror:
        raise VCenterConnectionError(f"cannot resolve vCenter host {target.host}") from None
    except TimeoutError:  # socket.timeout: the TCP connect, the handshake or an answer
        raise VCenterConnectionError(
            f"cannot reach vCenter {target.netloc}: no answer within {timeout:g} s"
        ) from None
    except (ConnectionError, OSError) as exc:
        reason = exc.strerror or exc.__class__.__name__
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise _tls_help(target, exc) from None
        raise VCenterConnectionError(f"cannot reach vCenter {target.netloc}: {reason}") from None
    except vmodl.fault.NotSupported:
        raise VCenterConnectionError(f"{target.netloc} does not speak the vSphere API") from None
    except UNREADABLE as exc:
        raise unreadable(target, exc) from None
    except vmodl.MethodFault as exc:  # a SOAP fault at log-in other than a wrong password
        reason = (getattr(exc, "msg", "") or type(exc).__name__).splitlines()[0]
        raise VCenterConnectionError(f"logging in to {target.netloc} failed: {reason}") from None
    except Exception:  # noqa: BLE001 - pyVmomi raises bare Exception, HTTPException, parse errors
        # for an endpoint that is no vSphere's: one line, never a traceback (nor the password).
        raise _not_vsphere(target) from None


def session_cookie(service_instance) -> str:
    """The ``vmware_soap_session`` cookie, which NFC downloads must carry."""
    return service_instance._stub.cookie or ""


def _bound_by_deadline(service_instance, ends_at: float, call_timeout: float) -> None:
    """Every SOAP call of this session after now starts only before ``ends_at`` (time.monotonic())
    and waits on its socket at most what is left of it: a whole read (an inventory of many pages)
    ends by then however the vCenter paces its answers. A call started too late is a TimeoutError."""
    stub = service_instance._stub
    get_connection = stub.GetConnection

    def get_bounded_connection():
        left = ends_at - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        conn = get_connection()
        wait = min(call_timeout, left)
        conn.timeout = wait  # a new connection connects with it
        if conn.sock is not None:
            conn.sock.settimeout(wait)
        return conn

    stub.GetConnection = get_bounded_connection


@contextmanager
def vsphere_session(
    target: VCenterTarget,
    *,
    timeout: float | None = None,
    call_timeout: float = SOAP_CALL_TIMEOUT,
    deadline: float | None = None,
) -> Iterator[object]:
    """A logged-in ServiceInstance for the ``with`` block, logged out after it. ``deadline``
    (seconds, None: none) bounds the whole session, log-in included: past it, the call under
    way fails and the block ends with a one-line VCenterConnectionError."""
    from pyVim.connect import Disconnect

    ends_at = None if deadline is None else time.monotonic() + deadline
    if deadline is not None:
        timeout = min(connect_timeout() if timeout is None else timeout, deadline)
    service_instance = connect(target, timeout=timeout, call_timeout=call_timeout)
    if ends_at is not None:
        _bound_by_deadline(service_instance, ends_at, call_timeout)
    try:
        yield service_instance
    except (ConnectionError, TimeoutError, http.client.HTTPException, ssl.SSLError) as exc:
        if ends_at is not None and isinstance(exc, TimeoutError) and time.monotonic() >= ends_at - 0.5:
            raise VCenterConnectionError(
                f"vCenter {target.netloc} did not finish answering within {deadline:g} s"
            ) from None
        # The session dropped after log-in (vCenter restarted, a proxy closed the connection):
        # one line, like a failure to connect, never a traceback.
        reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
        raise VCenterConnectionError(f"lost the connection to vCenter {target.netloc}: {reason}") from None
    except UNREADABLE as exc:
        raise unreadable(target, exc) from None
    finally:
        try:
            Disconnect(service_instance)
        except Exception:  # noqa: BLE001 - logging out of a dead session must not mask the error
            pass
