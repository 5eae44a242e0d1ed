"""A FAKE Docker Engine for the client's tests: no real Engine can run on this machine.

It speaks the documented Engine API endpoints that ports.inventory.docker_engine uses, and nothing
more: `GET /_ping`, `GET /containers/{id}/json` (Id, Name with its leading "/"),
`GET /containers/json` (Id, Names, Ports with PublicPort/Type) and
`POST /containers/{id}/stop?t=N` (204 stopped, 304 already stopped, 404 no such container, each
error as {"message": ...}). It serves HTTP/1.1 on a unix socket, as dockerd does, from a thread.
"""

from __future__ import annotations

import json
import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any


@dataclass
class FakeContainer:
    id: str
    name: str
    ports: list[dict[str, Any]] = field(default_factory=list)
    running: bool = True


@dataclass
class FakeEngineState:
    containers: list[FakeContainer]
    requests: list[tuple[str, str]] = field(default_factory=list)

    def find(self, ref: str) -> FakeContainer | None:
        for container in self.containers:
            if ref in (container.name, container.id) or (
                len(ref) >= 4 and container.id.startswith(ref)
            ):
                return container
        return None


class _FakeEngineHandler(BaseHTTPRequestHandler):
    """FAKE ENGINE: the documented Engine API endpoints the client uses, nothing more."""

    protocol_version = "HTTP/1.1"
    server: _FakeEngineServer

    def do_GET(self) -> None:
        state = self._record()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_ping":
            self._send(200, b"OK", "text/plain")
        elif path == "/containers/json":
            listing = [
                {"Id": c.id, "Names": [f"/{c.name}"], "Ports": c.ports, "State": "running"}
                for c in state.containers
                if c.running
            ]
            self._json(200, listing)
        elif path.startswith("/containers/") and path.endswith("/json"):
            ref = urllib.parse.unquote(path.split("/")[2])
            found = state.find(ref)
            if found is None:
                self._json(404, {"message": f"No such container: {ref}"})
            else:
                self._json(200, {"Id": found.id, "Name": f"/{found.name}"})
        else:
            self._json(404, {"message": "page not found"})

    def do_POST(self) -> None:
        state = self._record()
        parts = urllib.parse.urlsplit(self.path)
        segments = parts.path.split("/")
        if len(segments) != 4 or segments[1] != "containers" or segments[3] != "stop":
            self._json(404, {"message": "page not found"})
            return
        found = state.find(urllib.parse.unquote(segments[2]))
        if found is None:
            self._json(404, {"message": f"No such container: {segments[2]}"})
        elif not found.running:
            self._send(304, b"", "text/plain")
        else:
            found.running = False
            self._send(204, b"", "text/plain")

    def _record(self) -> FakeEngineState:
        self.server.state.requests.append((self.command, self.path))
        return self.server.state

    def _json(self, status: int, body: object) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status not in (204, 304):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a unix socket has no client address to log, and the test output stays clean

    def address_string(self) -> str:
        return "unix"


class _FakeEngineServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, state: FakeEngineState) -> None:
        self.state = state
        super().__init__(path, _FakeEngineHandler)


@contextmanager
def serving_fake_engine(path: str, containers: list[FakeContainer]) -> Iterator[FakeEngineState]:
    """A fake Engine on the unix socket `path` while the block runs; its state, to inspect."""
    assert len(path) < 100, f"unix socket path too long for AF_UNIX: {path}"
    state = FakeEngineState(containers)
    server = _FakeEngineServer(path, state)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
