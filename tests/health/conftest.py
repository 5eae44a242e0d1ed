"""Fixtures for the health tests: local servers, stopped at teardown."""

from __future__ import annotations

import shutil
import socket

import pytest

from tests.conftest import skip_or_fail
from tests.health.servers import (
    ControlledHTTP,
    EchoTCP,
    SilentTCP,
    self_signed_context,
)


@pytest.fixture
def http_server():
    server = ControlledHTTP()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_server(tmp_path):
    if shutil.which("openssl") is None:
        skip_or_fail("no openssl to make a self-signed certificate")
    server = ControlledHTTP(tls_context=self_signed_context(tmp_path))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def echo_server():
    server = EchoTCP()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def silent_server():
    server = SilentTCP()
    try:
        yield server
    finally:
        server.stop()


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def redis_port() -> int:
    if not _open(6379):
        skip_or_fail("no Redis on 127.0.0.1:6379")
    return 6379


@pytest.fixture
def postgres_dsn() -> str:
    if not _open(5432):
        skip_or_fail("no PostgreSQL on 127.0.0.1:5432")
    return "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
