"""A real webhook receiver on loopback for the tests: records every request, answers as told,
and checks signatures the way a receiver would, with the ``standardwebhooks`` library."""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field
from typing import Any

import standardwebhooks


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds to stall before answering (cut short when the receiver stops)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def verify(self, secret: str) -> Any:
        """The JSON payload, if the Standard Webhooks signature is good; raises otherwise."""
        return standardwebhooks.Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """``Receiver().start()``; queue replies with ``reply(...)``, then it answers ``default``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = receiver._record(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if reply.delay:
                    receiver.released.wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url_for(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def url(self) -> str:
        return self.url_for()

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def events(self) -> list[str]:
        import json

        return [json.loads(request.body)["event"] for request in list(self.requests)]

    def _record(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self.replies.pop(0) if self.replies else self.default

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
