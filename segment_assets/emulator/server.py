"""The HTTP server: routing, fault application and response writing."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from urllib.parse import SplitResult, parse_qs, urlsplit

from . import actionhub, control, lies, onesignal, usercom
from .config import EmulatorConfig
from .fault_answers import post_fault, pre_fault, rate_limited, retry_after_value
from .faults import POST_FAULTS, PRE_FAULTS, Switches
from .responses import Request, Response, Route, json_response, not_found
from .state import EmulatorState

ROUTERS: tuple[ModuleType, ...] = (actionhub, usercom, onesignal)
_LINGER_RESET = struct.pack("ii", 1, 0)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: EmulatorState) -> None:
        self.state = state
        self.verbose = state.config.verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # skip HTTPServer's getfqdn(), which can stall on a reverse DNS lookup
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: object) -> None:
        if self.verbose:
            super().handle_error(request, client_address)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "segment-emulator/1.0"
    sys_version = ""
    timeout = 120
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self._reset = False
        self._providers_served: set[str] = set()  # per TCP connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)
            if self._reset:
                self.connection.close()  # SO_LINGER 0: the peer sees a connection reset

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        query = parse_qs(parts.query, keep_blank_values=True)
        req = Request(self.command, parts.path, query, self.headers, host)
        body = self._read_body()
        state = self.server.state
        if req.path.startswith(control.PREFIX):
            self._send(control.handle(state, req, body))
            return
        for module in ROUTERS:
            route = module.match(req)
            if route is not None:
                self._provider(module, req, route, parts)
                return
        self._send(not_found())

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > 0:
            return self.rfile.read(int(length))
        return b""

    def _provider(self, module: ModuleType, req: Request, route: Route, parts: SplitResult) -> None:
        state = self.server.state
        new_connection = route.provider not in self._providers_served
        self._providers_served.add(route.provider)
        admission = state.admit(route.provider, route.endpoint, route.account, new_connection)
        sw, fault = admission.switches, admission.fault
        status = 0
        try:
            if sw.latency_ms > 0:
                time.sleep(sw.latency_ms / 1000.0)
            if admission.wait_s:
                value = retry_after_value(admission.wait_s, sw.retry_after_format)
                resp = rate_limited(route.provider, value, admission.wait_s)
            elif fault in PRE_FAULTS:
                path_qs = parts.path + (f"?{parts.query}" if parts.query else "")
                foreign = state.config.foreign_origin
                resp = pre_fault(fault, route.provider, path_qs, foreign)
            elif req.method != "GET":
                resp = json_response(405, {"detail": "Method Not Allowed"})
            else:
                if fault == "timeout":
                    time.sleep(sw.timeout_sleep_s)
                resp = self._run(module, req, route, sw)
                resp = lies.tell(state, route, sw, resp)
                if fault in POST_FAULTS:
                    resp = post_fault(fault, resp)
            status = resp.status
        finally:
            # counted before the answer leaves, so a client that has read it sees it counted
            state.release(route.provider, route.account, status)
        self._send(resp)

    def _run(self, module: ModuleType, req: Request, route: Route, sw: Switches) -> Response:
        try:
            return module.handle(self.server.state, req, route, sw)
        except Exception:  # a bug in the emulator itself: say so loudly, answer 500
            traceback.print_exc()
            return json_response(500, {"detail": "emulator internal error"})

    def _send(self, resp: Response) -> None:
        if resp.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self.close_connection = True
            self._reset = True
            return
        self.send_response(resp.status)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)


class EmulatorServer:
    """The three provider APIs on one local port; use as a context manager or start/stop."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.state = EmulatorState(self.config)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.config.host, self.config.port), self.state)
        self._httpd = httpd
        self.state.public_url = self.url
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the emulator is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def base_url(self, provider: str, account: str | None = None) -> str:
        """The base URL a client of ``provider`` should be configured with."""
        if provider == "actionhub":
            return f"{self.url}/actionhub"
        if provider == "usercom":
            subdomain = account or self.config.usercom[0].subdomain
            return usercom.api_base(self.url, subdomain)
        if provider == "onesignal":
            return f"{self.url}/onesignal"
        raise ValueError(f"unknown provider {provider!r}")
