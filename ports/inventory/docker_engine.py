"""A tiny Docker Engine API client over its unix socket: which container is this, and stop it.

Only what naming and stopping a container takes: `GET /_ping`, `GET /containers/{id}/json`,
`GET /containers/json` and `POST /containers/{id}/stop?t=N`, spoken as HTTP/1.1 through
http.client on a unix-socket connection (Podman's Docker-compatible socket answers the same).
No Engine is the common case on a developer's machine, and this runs on the listing path, so every
query has a short timeout and a socket that does not answer simply means "no engine".
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

DEFAULT_SOCKET = "/var/run/docker.sock"
# Queries are a few local round trips: an Engine slower than this is as good as absent.
QUERY_TIMEOUT = 0.5
# After an Engine failed to answer, queries give up at once for this long rather than each waiting
# QUERY_TIMEOUT again: a listing of 50 containers must not take 25 s because dockerd hangs.
DOWN_FOR = 5.0
# `POST /stop` answers only once the container has stopped: the grace period, then SIGKILL's time.
STOP_MARGIN = 10.0


class EngineError(Exception):
    """An Engine operation that did not happen; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    id: str  # the full 64-hex id
    name: str  # without the leading "/" the Engine puts there

    @property
    def short_id(self) -> str:
        return self.id[:12]


def engine_socket_path(docker_host: str | None = None) -> str:
    """The Engine's socket: DOCKER_HOST when it names a unix socket, else the default.

    A tcp:// or ssh:// DOCKER_HOST is ignored on purpose: the console inspects and stops servers of
    this machine only, and never reaches beyond it, even when the user's docker CLI does.
    """
    host = os.environ.get("DOCKER_HOST", "") if docker_host is None else docker_host
    if host.startswith("unix://"):
        return host[len("unix://") :] or DEFAULT_SOCKET
    return DEFAULT_SOCKET


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client speaking to a unix socket: the Engine's own transport."""

    def __init__(self, path: str, timeout: float) -> None:
        # The host only fills the Host header, which the Engine requires but does not read.
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def message(self) -> str:
        # The Engine's errors are {"message": "..."}; anything else is shown as it came.
        try:
            data = self.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])
        return self.body.decode(errors="replace").strip() or f"HTTP {self.status}"


class EngineClient:
    """One Engine, by socket path (None: resolved from DOCKER_HOST at each call)."""

    def __init__(self, socket_path: str | None = None, *, timeout: float = QUERY_TIMEOUT) -> None:
        self._socket_path = socket_path
        self.timeout = timeout
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def socket_path(self) -> str:
        return self._socket_path or engine_socket_path()

    def available(self) -> bool:
        """True when an Engine answers `GET /_ping` on the socket now."""
        try:
            return self._request("GET", "/_ping").status == 200
        except EngineError:
            return False

    def container(self, container_id: str) -> ContainerInfo | None:
        """The container with this id (or name); None when there is none or no Engine answers."""
        try:
            response = self._request("GET", f"/containers/{_quote(container_id)}/json")
        except EngineError:
            return None
        data = response.json() if response.status == 200 else None
        if not isinstance(data, dict) or not isinstance(data.get("Id"), str):
            return None
        return ContainerInfo(id=data["Id"], name=str(data.get("Name") or "").lstrip("/"))

    def container_for_host_port(self, port: int, proto: str = "tcp") -> ContainerInfo | None:
        """The running container that publishes host port `port`/`proto`, if an Engine answers."""
        try:
            response = self._request("GET", "/containers/json")
        except EngineError:
            return None
        containers = response.json() if response.status == 200 else None
        for entry in containers if isinstance(containers, list) else ():
            if not isinstance(entry, dict):
                continue
            for published in entry.get("Ports") or ():
                if (
                    isinstance(published, dict)
                    and published.get("PublicPort") == port
                    and published.get("Type", "tcp") == proto
                ):
                    names = entry.get("Names") or [""]
                    return ContainerInfo(
                        id=str(entry.get("Id", "")), name=str(names[0]).lstrip("/")
                    )
        return None

    def stop(self, container_id: str, timeout_s: int) -> str:
        """Stop a container as `docker stop -t timeout_s` does: "stopped" or "already stopped".

        Raises EngineError when there is no such container or no Engine answers.
        """
        if timeout_s < 0:
            raise EngineError(f"the stop timeout must be 0 or more seconds, not {timeout_s}")
        # A hung Engine fails the short ping, rather than holding the user for the whole margin.
        self._request("GET", "/_ping", retry_when_down=True)
        response = self._request(
            "POST",
            f"/containers/{_quote(container_id)}/stop?t={int(timeout_s)}",
            timeout=timeout_s + STOP_MARGIN,
            retry_when_down=True,
        )
        if response.status == 204:
            return "stopped"
        if response.status == 304:
            return "already stopped"
        if response.status == 404:
            raise EngineError(f"no such container: {container_id}")
        raise EngineError(
            f"the Docker Engine did not stop container {container_id}: {response.message()}"
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        retry_when_down: bool = False,
    ) -> _Response:
        socket_path = self.socket_path
        with self._lock:
            down_until = self._down_until.get(socket_path, 0.0)
        # A stop the user asked for always tries: the Engine may be back.
        if not retry_when_down and time.monotonic() < down_until:
            raise EngineError(f"no Docker Engine answers at {socket_path}")
        connection = _UnixHTTPConnection(socket_path, timeout or self.timeout)
        try:
            connection.request(method, path, headers={"Accept": "application/json"})
            raw = connection.getresponse()
            response = _Response(raw.status, raw.read())
        except (OSError, http.client.HTTPException) as error:
            with self._lock:
                self._down_until[socket_path] = time.monotonic() + DOWN_FOR
            reason = (
                "it timed out"
                if isinstance(error, TimeoutError)
                else str(error) or type(error).__name__
            )
            raise EngineError(f"no Docker Engine answers at {socket_path} ({reason})") from error
        finally:
            connection.close()
        with self._lock:
            self._down_until.pop(socket_path, None)
        return response


def _quote(container_id: str) -> str:
    # Ids and names are [a-zA-Z0-9_.-]; quoting keeps anything else from changing the path.
    return urllib.parse.quote(container_id, safe="")


# The Engine the console talks to: DOCKER_HOST's unix socket or /var/run/docker.sock.
DEFAULT_ENGINE = EngineClient()


def available() -> bool:
    return DEFAULT_ENGINE.available()


def container(container_id: str) -> ContainerInfo | None:
    return DEFAULT_ENGINE.container(container_id)


def container_for_host_port(port: int, proto: str = "tcp") -> ContainerInfo | None:
    return DEFAULT_ENGINE.container_for_host_port(port, proto)


def stop(container_id: str, timeout_s: int) -> str:
    return DEFAULT_ENGINE.stop(container_id, timeout_s)
