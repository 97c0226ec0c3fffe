"""The outbound HTTP helper: only http(s), no redirects, a total deadline, and no private
addresses unless allowed — checked on the address actually connected to."""

from __future__ import annotations

import datetime
import re
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hypersdk.lib import outbound_http
from tests.webhook_receiver import Receiver, Reply

LOOPBACK = ["127.0.0.0/8"]


def post(url: str, allowed=(), timeout: float = 10, **kwargs) -> outbound_http.OutboundResponse:
    return outbound_http.post(
        url,
        content=b'{"a":1}',
        headers={"X-Test": "yes"},
        timeout=timeout,
        allowed_networks=allowed,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "only http and https URLs are allowed, not 'ftp'"),
        ("file:///etc/passwd", "only http and https URLs are allowed, not 'file'"),
        ("not a url", "only http and https URLs are allowed"),
        ("http:///nohost", "the URL has no host"),
    ],
)
def test_only_http_and_https_urls_with_a_host(url, message):
    with pytest.raises(outbound_http.RefusedDestination, match=message):
        post(url)


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("10.0.0.1", "10.0.0.1 is a private address"),
        ("192.168.1.10", "is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address (cloud metadata"),
        ("100.100.100.200", "not a public address"),  # Alibaba's metadata, in 100.64.0.0/10
        ("0.0.0.0", "not a public address"),
        ("[fd00:ec2::254]", "a private address"),  # AWS's IPv6 metadata
        ("[::ffff:127.0.0.1]", "a loopback address"),
        ("[64:ff9b::a00:1]", "a private address"),  # NAT64 of 10.0.0.1
        ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
        ("127.1", "127.1 resolves to 127.0.0.1, a loopback address"),
        ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_non_public_addresses_are_refused_when_connecting(host, why):
    with pytest.raises(outbound_http.RefusedDestination, match=f"{re.escape(why)}.*refused"):
        post(f"http://{host}:9/hook")


def test_a_name_resolving_to_loopback_is_refused_even_with_a_live_receiver(receiver):
    with pytest.raises(outbound_http.RefusedDestination, match="localhost resolves to 127.0.0.1"):
        post(receiver.url_for("localhost"))
    assert receiver.requests == []


def test_the_allowlist_admits_loopback_and_the_host_header_keeps_the_name(receiver):
    response = post(receiver.url_for("localhost"), allowed=LOOPBACK)
    assert (response.status_code, response.body, response.ok) == (200, b"ok", True)
    (request,) = receiver.requests
    assert request.headers["host"] == f"localhost:{receiver.port}"
    assert (request.body, request.headers["x-test"]) == (b'{"a":1}', "yes")


def test_an_allowlist_of_another_network_still_refuses_loopback(receiver):
    with pytest.raises(outbound_http.RefusedDestination):
        post(receiver.url, allowed=["10.0.0.0/8"])


def test_redirects_are_not_followed(receiver):
    receiver.reply(Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    response = post(receiver.url, allowed=LOOPBACK)
    assert response.status_code == 302 and not response.ok
    assert len(receiver.requests) == 1


def test_a_slow_receiver_hits_the_timeout(receiver):
    receiver.reply(Reply(200, delay=30))
    with pytest.raises(outbound_http.OutboundTimeout, match="no complete answer within 0.3 s"):
        post(receiver.url, allowed=LOOPBACK, timeout=0.3)


def test_the_timeout_bounds_the_whole_exchange_not_each_read():
    """A receiver dribbling a byte at a time never lets one read time out; the deadline stops it."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def dribble():
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000:
                if stop.wait(0.05):
                    return
                connection.sendall(bytes([byte]))

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    try:
        with pytest.raises(outbound_http.OutboundTimeout):
            post(f"http://127.0.0.1:{server.getsockname()[1]}/", allowed=LOOPBACK, timeout=1)
    finally:
        stop.set()
        server.close()


def test_an_unresolvable_name_is_a_clear_error():
    with pytest.raises(outbound_http.OutboundError, match="cannot resolve no-such-host.invalid"):
        post("http://no-such-host.invalid/hook")


def test_a_closed_port_is_a_clear_error():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(outbound_http.OutboundError, match=f"cannot connect to 127.0.0.1:{port}"):
        post(f"http://127.0.0.1:{port}/", allowed=LOOPBACK)


def test_bad_allowlist_entries_are_named():
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not a network"):
        outbound_http.parse_networks(["10.0.0.0/33"])


# ---- TLS: connected by address, verified by name ----


def _certificate_for(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture
def tls_receiver(tmp_path):
    cert, key = _certificate_for("localhost")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    receiver = Receiver()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names = []
    server_context.sni_callback = lambda sock, name, context: names.append(name)
    receiver.server.socket = server_context.wrap_socket(receiver.server.socket, server_side=True)
    receiver.start()
    client_context = ssl.create_default_context(cadata=cert_pem.decode())
    yield receiver, client_context, names
    receiver.stop()


def test_https_connects_to_the_checked_address_but_verifies_the_name(tls_receiver):
    receiver, context, names = tls_receiver
    response = post(f"https://localhost:{receiver.port}/hook", allowed=LOOPBACK, ssl_context=context)
    assert response.status_code == 200
    assert names == ["localhost"]  # SNI carried the name, though the socket went to 127.0.0.1


def test_https_to_the_address_itself_fails_verification_of_a_name_certificate(tls_receiver):
    receiver, context, _ = tls_receiver
    with pytest.raises(outbound_http.OutboundError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        post(f"https://127.0.0.1:{receiver.port}/hook", allowed=LOOPBACK, ssl_context=context)
