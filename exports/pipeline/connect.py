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
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urlsplit
from xml.parsers.expat import ExpatError

from exports.pipeline.errors import UnreadableAnswer, VCenterConnectionError

_TRUE = {"1", "true", "yes", "on"}
# What reading an answer that is not the SOAP vCenter should send raises: pyvmomi's parser
# (expat), the inventory's (ElementTree), and the inventory's own decoding.
UNREADABLE = (ExpatError, ET.ParseError, UnreadableAnswer)
# Every SOAP call gets a socket timeout: without one, a vCenter that stops answering (hung,
# network partition) blocks the lease keepalive, abort and the worker thread forever.
SOAP_CALL_TIMEOUT = 120.0


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


def connect(
    target: VCenterTarget, *, timeout: float = 30.0, call_timeout: float = SOAP_CALL_TIMEOUT
):  # -> vim.ServiceInstance
    """Log in and return a ServiceInstance, mapping every failure to one clear line.

    ``timeout`` closes idle pooled connections; ``call_timeout`` bounds each SOAP call.
    """
    from pyVim.connect import SmartConnect
    from pyVmomi import vim, vmodl

    if not target.username:
        raise VCenterConnectionError(
            f"no user name for {target.host}: set GOVC_USERNAME or put it in GOVC_URL"
        )
    try:
        return SmartConnect(
            host=target.host,
            port=target.port,
            user=target.username,
            pwd=target.password,
            sslContext=target.ssl_context(),
            connectionPoolTimeout=timeout,
            httpConnectionTimeout=call_timeout,
            disableSslCertValidation=target.insecure,
        )
    except vim.fault.InvalidLogin:
        raise VCenterConnectionError(f"authentication failed for {target.display}") from None
    except ssl.SSLCertVerificationError as exc:
        raise _tls_help(target, exc) from None
    except ssl.SSLError as exc:
        raise _tls_help(target, exc) from None
    except socket.gaierror:
        raise VCenterConnectionError(f"cannot resolve vCenter host {target.host}") from None
    except (ConnectionError, TimeoutError, OSError) as exc:
        reason = exc.strerror or exc.__class__.__name__
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise _tls_help(target, exc) from None
        raise VCenterConnectionError(f"cannot reach vCenter {target.netloc}: {reason}") from None
    except vmodl.fault.NotSupported:
        raise VCenterConnectionError(f"{target.netloc} does not speak the vSphere API") from None
    except UNREADABLE as exc:
        raise unreadable(target, exc) from None


def session_cookie(service_instance) -> str:
    """The ``vmware_soap_session`` cookie, which NFC downloads must carry."""
    return service_instance._stub.cookie or ""


@contextmanager
def vsphere_session(
    target: VCenterTarget, *, timeout: float = 30.0, call_timeout: float = SOAP_CALL_TIMEOUT
) -> Iterator[object]:
    from pyVim.connect import Disconnect

    service_instance = connect(target, timeout=timeout, call_timeout=call_timeout)
    try:
        yield service_instance
    except (ConnectionError, TimeoutError, http.client.HTTPException, ssl.SSLError) as exc:
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
