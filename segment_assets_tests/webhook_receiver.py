"""A real HTTP server on loopback that plays Slack and a JSON webhook for the alert tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    path: str
    status: int
    body: dict


class Receiver:
    """Answers POSTs with ``status[path]`` (default 200) after ``delay`` seconds; records all."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Request] = []
        self.status: dict[str, int] = {}
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                time.sleep(receiver.delay)
                status = receiver.status.get(self.path, 200)
                receiver.requests.append(Request(self.path, status, body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 400 else b"error")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self, path: str) -> list[dict]:
        """Bodies of the POSTs to ``path`` that were answered with success."""
        return [r.body for r in self.requests if r.path == path and r.status < 400]

    def attempts(self, path: str) -> int:
        return sum(r.path == path for r in self.requests)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
