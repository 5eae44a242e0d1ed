"""Fixtures of the inventory tests: children and sockets that end with the test."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from tests.ports.inventory_helpers import Children


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.end_all()


@pytest.fixture
def sockets() -> Iterator[Callable[..., socket.socket]]:
    opened: list[socket.socket] = []

    def open_socket(proto: str, host: str, *, v6only: bool | None = None) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        opened.append(sock)
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind((host, 0))
        if proto == "tcp":
            sock.listen()
        return sock

    try:
        yield open_socket
    finally:
        for sock in opened:
            sock.close()
