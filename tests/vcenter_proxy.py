"""A TLS proxy in front of the vSphere simulator that rewrites its answers: what a sick vCenter
(or a proxy before it) sends, for the tests of how the inventory and preflight read it.

``AnswerProxy(sim)`` listens on 127.0.0.1 with a certificate of its own (``ca_file``); every
request goes to the simulator as is, and its answer through ``proxy.rewrite(request, status,
body) -> (status, body)`` (the identity unless a test sets it). ``environment()`` is the
simulator's GOVC_* pointing at the proxy.
"""

from __future__ import annotations

import datetime
import http.client
import http.server
import ipaddress
import socketserver
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.vsphere_sim.harness import VSphereSimulator

Rewrite = Callable[[bytes, int, bytes], tuple[int, bytes]]


def _identity(request: bytes, status: int, body: bytes) -> tuple[int, bytes]:
    return status, body


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "proxy-cert.pem", directory / "proxy-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class AnswerProxy:
    """The simulator behind a proxy whose ``rewrite`` changes what it answers."""

    def __init__(self, sim: VSphereSimulator, directory: Path) -> None:
        self.sim = sim
        self.rewrite: Rewrite = _identity
        self.ca_file, key_file = self_signed_certificate(directory)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # pyvmomi keeps its connections

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # pyvmomi reads /sdk/vimServiceVersions.xml first
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = self.rfile.read(length) if length else b""
                upstream = http.client.HTTPSConnection(sim.host, context=sim.ssl_context(), timeout=60)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                upstream.request(method, self.path, request or None, headers)
                answer = upstream.getresponse()
                body = answer.read()
                kept = [
                    (k, v)
                    for k, v in answer.getheaders()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")
                ]
                upstream.close()
                status, body = proxy.rewrite(request, answer.status, body)
                self.send_response(status)
                for key, value in kept:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = _Server(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def environment(self) -> dict[str, str]:
        """GOVC_* of the simulator, reached through this proxy."""
        return {
            "GOVC_URL": f"https://127.0.0.1:{self.port}/sdk",
            "GOVC_USERNAME": self.sim.username,
            "GOVC_PASSWORD": self.sim.password,
            "GOVC_TLS_CA_CERTS": str(self.ca_file),
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
