"""Real servers on 127.0.0.1 for the health tests, each run in a thread of the test process.

An HTTP server whose status, delay and body the test sets; a TCP echo server; a server that
accepts and never answers; a TLS server with a self-signed certificate; a webhook receiver.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

# shutdown() waits for serve_forever's next poll: 50 ms, not the default half second a test
# would spend in teardown for each server it stops.
POLL_INTERVAL = 0.05


def serve_in_background(server: socketserver.BaseServer) -> threading.Thread:
    """Start `server` in a daemon thread that `server.shutdown()` stops within POLL_INTERVAL."""
    thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True)
    thread.start()
    return thread


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass


class _TrackingHTTPServer(ThreadingHTTPServer):
    """Remembers open connections so that stop() can close them as a dying process would."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()

    def get_request(self):
        connection, address = super().get_request()
        self.connections.add(connection)
        return connection, address

    def close_connections(self) -> None:
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self.connections.clear()


class ControlledHTTP:
    """`status`, `delay` and `body` may be changed at any time; `requests` counts calls."""

    def __init__(self, tls_context: ssl.SSLContext | None = None):
        self.status = 200
        self.delay = 0.0
        self.stopped = False
        self.body = b"ok: all good"
        self.requests = 0
        owner = self

        class Handler(_Quiet):
            def do_GET(self):
                owner.requests += 1
                if self.path.startswith("/huge"):
                    return self._huge()
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", "/health")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if owner.delay:
                    time.sleep(owner.delay)
                self.send_response(owner.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)
                return None

            do_HEAD = do_GET

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.do_GET()

            def _huge(self):
                chunk = b"x" * 65536
                self.send_response(200)
                self.send_header("Content-Length", str(len(chunk) * 800))  # 50 MiB
                self.end_headers()
                try:
                    for _ in range(800):
                        self.wfile.write(chunk)
                except OSError:
                    pass  # the probe stopped reading: exactly what we want

        self.server = _TrackingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/health"
        self.thread = serve_in_background(self.server)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()
        # A stopped service also drops its keep-alive connections.
        self.server.close_connections()


class EchoTCP:
    def __init__(self):
        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                data = self.request.recv(4096)
                if data:
                    self.request.sendall(b"echo:" + data)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        serve_in_background(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentTCP:
    """Accepts connections (the kernel's backlog does) and never says a word."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = self.socket.getsockname()[1]

    def stop(self) -> None:
        self.socket.close()


class WebhookReceiver:
    """Records every POST (path, JSON body) as it answers; answers `status`, after `delay`
    seconds, or after the next of `delays` while any are left (one per request, in order).
    `on_first_post`, if set, runs while the first POST is being answered."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.status = 200
        self.delay = 0.0
        self.delays: list[float] = []
        self.on_first_post: Callable[[], None] | None = None
        owner = self

        class Handler(_Quiet):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                hook, owner.on_first_post = owner.on_first_post, None
                if hook is not None:
                    hook()
                delay = owner.delays.pop(0) if owner.delays else owner.delay
                if delay:
                    time.sleep(delay)  # the notifier's own slowness, not a wait in a test
                try:
                    owner.received.append((self.path, json.loads(body or b"{}")))
                except ValueError:
                    owner.received.append((self.path, {"raw": body.decode()}))
                self.send_response(owner.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve_in_background(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 (openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
