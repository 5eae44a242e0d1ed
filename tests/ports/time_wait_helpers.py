"""A real TIME_WAIT on a port of our own: a loopback server and client, the server closes first."""

from __future__ import annotations

import socket

from ports.inventory.diagnosis import time_wait_on
from tests.conftest import wait_until


def leave_time_wait(*, reuse_address: bool, host: str = "127.0.0.1") -> int:
    """A port with nothing listening and one connection in TIME_WAIT (for 60 s), on `host`.

    `reuse_address` is whether the departed server had set SO_REUSEADDR: the kernel copies it
    into the TIME_WAIT socket, and a later SO_REUSEADDR bind succeeds only if it was set.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse_address))
        server.bind((host, 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection((host, port), timeout=10) as client:
            accepted, _ = server.accept()
            accepted.close()  # the side that closes first keeps the TIME_WAIT: the server's port
            assert client.recv(1) == b""  # the server's FIN arrived; our close answers it
    assert wait_until(lambda: time_wait_on(port).connections >= 1, timeout=20), (
        f"no TIME_WAIT on port {port}"
    )
    return port
