"""A TLS client socket for ``http.client`` that reads the network in large pieces.

``ssl.SSLSocket`` lets OpenSSL read the socket itself, one TLS record at a time and in two
``read`` calls per record (the 5-byte header, then at most 16 KiB): about 131,000 system calls
and as many TCP window updates per GiB downloaded. Here the socket is read into a memory BIO
up to ``RECV_SIZE`` bytes at a time and the records are decrypted from memory, so a disk costs
a few thousand ``recv`` calls, as it does in curl.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl

RECV_SIZE = 1 << 20  # as much as the kernel holds; bounds the ciphertext kept in memory


class BulkTLSConnection(http.client.HTTPSConnection):
    """``http.client.HTTPSConnection`` over a ``BulkTLSSocket``."""

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        try:
            self.sock = BulkTLSSocket(self.sock, self._context, self.host)
        except BaseException:
            self.sock.close()
            self.sock = None
            raise


class BulkTLSSocket:
    """The part of a socket that ``http.client`` uses (sendall, makefile, close), over TLS.

    The handshake happens in the constructor (ssl.SSLError or OSError on failure). One thread
    reads and writes; another may only call ``shutdown``, which wakes a blocked read.
    """

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        self._received = bytearray(RECV_SIZE)
        self._received_view = memoryview(self._received)
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._receive():
                    raise ssl.SSLEOFError(
                        "the server closed the connection during the TLS handshake"
                    ) from None
        self._flush()

    def _flush(self) -> None:
        if self._outgoing.pending:
            self._sock.sendall(self._outgoing.read())

    def _receive(self) -> bool:
        """Move what the kernel holds (blocking until something) into the BIO; False at EOF."""
        count = self._sock.recv_into(self._received)
        if not count:
            self._incoming.write_eof()
            return False
        self._incoming.write(self._received_view[:count])
        return True

    def recv_into(self, buffer, nbytes: int = 0) -> int:
        """Decrypt into ``buffer`` all that has arrived, waiting only while nothing has.

        Returns 0 at the end of the stream (close_notify or a plain close, as SSLSocket's
        default ``suppress_ragged_eofs``: a short body is caught by the Content-Length).
        """
        view = memoryview(buffer).cast("B")
        wanted = nbytes or len(view)
        filled = 0
        while filled < wanted:
            try:
                got = self._tls.read(wanted - filled, view[filled:])
            except ssl.SSLWantReadError:
                if filled or self._incoming.eof:
                    break
                self._flush()  # a post-handshake message may want an answer
                self._receive()
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if not got:
                break
            filled += got
        return filled

    def sendall(self, data) -> None:
        view = memoryview(data).cast("B")
        while view:
            written = self._tls.write(view)
            view = view[written:]
            self._flush()

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        if mode != "rb":
            raise ValueError(f"BulkTLSSocket.makefile supports only 'rb', not {mode!r}")
        return io.BufferedReader(_RawReader(self))

    def getpeercert(self, binary_form: bool = False):
        return self._tls.getpeercert(binary_form)

    def shutdown(self, how: int) -> None:
        """Shut the TCP connection down (any thread): a blocked read returns at once."""
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()


class _RawReader(io.RawIOBase):
    def __init__(self, tls: BulkTLSSocket) -> None:
        self._tls = tls

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._tls.recv_into(buffer)
