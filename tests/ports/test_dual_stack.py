"""A dual-stack [::] socket (IPV6_V6ONLY off) told from a v6-only one: sock_diag, diagnosis."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from ports import inventory
from ports.inventory import sockdiag
from ports.inventory.diagnosis import explain_port

pytestmark = [
    pytest.mark.skipif(not sockdiag.available(), reason="no sock_diag on this kernel"),
    pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine"),
]


def _row(sock: socket.socket) -> sockdiag.SocketRow:
    port = sock.getsockname()[1]
    client = sockdiag.SockDiagClient()
    try:
        (row,) = [row for row in client.listening() if row.port == port]
    finally:
        client.close()
    return row


@pytest.mark.parametrize(
    ("proto", "host", "v6only", "dual_stack"),
    [
        pytest.param("tcp", "::", False, True, id="tcp-wildcard-dual-stack"),
        pytest.param("tcp", "::", True, False, id="tcp-wildcard-v6-only"),
        pytest.param("udp", "::", False, True, id="udp-wildcard-dual-stack"),
        pytest.param("udp", "::", True, False, id="udp-wildcard-v6-only"),
        # IPV6_V6ONLY off on a specific address takes no IPv4: not dual-stack.
        pytest.param("tcp", "::1", False, False, id="tcp-loopback-v6only-off"),
        pytest.param("tcp", "0.0.0.0", None, False, id="tcp-ipv4"),
    ],
)
def test_it_reads_ipv6_only_from_sock_diag(
    sockets: Callable[..., socket.socket], proto: str, host: str, v6only, dual_stack: bool
) -> None:
    row = _row(sockets(proto, host, v6only=v6only))
    assert row.dual_stack is dual_stack


def test_it_says_a_dual_stack_listener_blocks_ipv4_too(sockets) -> None:
    port = sockets("tcp", "::", v6only=False).getsockname()[1]
    explanation = explain_port(port, inventory.Inventory().snapshot())
    assert explanation.kind == "held"
    assert f"[::]:{port} is dual-stack" in explanation.summary
    assert f"binds on 0.0.0.0:{port} and 127.0.0.1:{port} fail as well" in explanation.summary


def test_it_says_a_v6_only_listener_leaves_ipv4_free(sockets) -> None:
    port = sockets("tcp", "::", v6only=True).getsockname()[1]
    explanation = explain_port(port, inventory.Inventory().snapshot())
    assert explanation.kind == "held"
    assert explanation.free is False  # a dual-stack [::] server could not bind it
    assert f"[::]:{port} is IPv6 only: a server on 127.0.0.1:{port}" in explanation.summary
    # ...which a real IPv4 bind confirms.
    with socket.socket() as ipv4:
        ipv4.bind(("127.0.0.1", port))
