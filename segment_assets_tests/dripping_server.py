"""A real HTTP server on a loopback socket that sends its headers at once, then its body
one byte at a time — a misbehaviour the emulator cannot stage — optionally gzip-compressed,
as real providers' servers answer a client that accepts it."""

from __future__ import annotations

import contextlib
import gzip
import socketserver
import threading


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            request += chunk
        with self.server.lock:
            self.server.paths.append(request.split(b" ", 2)[1].decode())
        body = self.server.body
        encoding = ""
        if self.server.gzip and b"gzip" in request.lower():
            body, encoding = gzip.compress(body), "Content-Encoding: gzip\r\n"
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{encoding}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        with contextlib.suppress(OSError):  # the client gave up: that is the point
            self.request.sendall(head.encode())
            for i in range(len(body)):
                if self.server.stopping.wait(self.server.interval):
                    return
                self.request.sendall(body[i : i + 1])


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, body: bytes, interval: float, gzip: bool) -> None:
        self.body, self.interval, self.gzip = body, interval, gzip
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)


class DrippingServer:
    """``with DrippingServer(b'{...}', interval=0.2) as server: server.url``; every request
    is answered 200 with ``body``, one byte every ``interval`` seconds (gzip-compressed when
    ``gzip`` and the client accepts it)."""

    def __init__(self, body: bytes, interval: float, gzip: bool = False) -> None:
        self._server = _Server(body, interval, gzip)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[str]:
        with self._server.lock:
            return list(self._server.paths)

    @property
    def seconds_to_send(self) -> float:
        return len(self._server.body) * self._server.interval

    def __enter__(self) -> DrippingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
