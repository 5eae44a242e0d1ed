"""A guard for the outbound-policy tests: it records every socket connect, and stops any to an
address beyond loopback before the connect() system call (so no packet ever leaves).

It uses Python's audit hooks: `socket.connect` is raised by every connect, from asyncio, anyio
or plain sockets, before the kernel sees it, and a hook that raises aborts the call. Hooks
cannot be removed, so the one hook is installed once and is a no-op outside a guarded test.
"""

from __future__ import annotations

import ipaddress
import sys
import threading
from collections.abc import Iterator

import pytest


class BeyondLoopback(ConnectionRefusedError):
    """Raised in place of a connect to an address beyond loopback."""


class ConnectRecord:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.addresses: list[tuple[str, int]] = []

    @property
    def hosts(self) -> list[str]:
        return [host for host, _port in self.addresses]


_active: ConnectRecord | None = None
_installed = False


def _hook(event: str, args: tuple) -> None:
    if event != "socket.connect" or _active is None:
        return
    address = args[1]
    if not isinstance(address, tuple):
        return  # a Unix socket path
    host = str(address[0])
    with _active.lock:
        _active.addresses.append((host, int(address[1])))
    if not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
        raise BeyondLoopback(111, f"test guard: no connection beyond loopback ({host})")


@pytest.fixture
def connects() -> Iterator[ConnectRecord]:
    """Every connect attempted during the test; those beyond loopback are refused."""
    global _active, _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    _active = ConnectRecord()
    try:
        yield _active
    finally:
        _active = None
