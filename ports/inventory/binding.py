"""Would a server started now bind this port? Real bind() tests, no Django.

A plain server binds without SO_REUSEADDR, and one bind on 127.0.0.1 is not enough to know: on
Linux it succeeds while 127.0.0.2, [::1] or a v6-only [::] hold the port. The dual-stack [::]
bind collides with every TCP socket on the port, so "the wildcard and loopback" is the test.

What SO_REUSEADDR changes, measured on Linux 6.18 with a TIME_WAIT the server side left:
  - a bind without it fails (EADDRINUSE) while any TIME_WAIT connection is on the port;
  - a bind with it succeeds only if the server that left the TIME_WAIT had set it too (the
    kernel copies the flag into the TIME_WAIT socket, and both sides must carry it);
  - it never lets a bind share the port with a listening socket.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Container
from typing import NamedTuple

FIRST_UNPRIVILEGED_PORT = 1024
PORT_MAX = 65535


class BindProbe(NamedTuple):
    """One test bind: the address family, the address, and IPV6_V6ONLY to set (None: leave it)."""

    family: socket.AddressFamily
    address: str
    v6only: int | None = None


LOOPBACK = BindProbe(socket.AF_INET, "127.0.0.1")


def host_probe(host: str) -> BindProbe:
    """The bind test for `host`: an IP address, or "localhost" (taken as 127.0.0.1)."""
    if isinstance(host, str) and host.lower() == "localhost":
        return LOOPBACK
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be an IP address or 'localhost', got {host!r}") from None
    return BindProbe(socket.AF_INET if ip.version == 4 else socket.AF_INET6, str(ip))


def wildcard_probes() -> list[BindProbe]:
    """Binds that, together, collide with any TCP socket on a port: [::] dual-stack if possible."""
    v4 = BindProbe(socket.AF_INET, "0.0.0.0")
    if socket.has_ipv6:
        # Dual-stack first; systems without it (OpenBSD) need a v4 and a v6-only probe.
        for v6only, probes in (
            (0, [BindProbe(socket.AF_INET6, "::", 0)]),
            (1, [v4, BindProbe(socket.AF_INET6, "::", 1)]),
        ):
            if bind_errno(BindProbe(socket.AF_INET6, "::", v6only), 0) == 0:
                return probes
    return [v4]  # IPv6 disabled


def bind_errno(
    probe: BindProbe,
    port: int,
    *,
    reuse_address: bool = False,
    kind: socket.SocketKind = socket.SOCK_STREAM,
) -> int:
    """0 when `probe`'s address can bind `port` right now, else the errno (EADDRINUSE, ...)."""
    try:
        sock = socket.socket(probe.family, kind)
    except OSError as exc:
        return exc.errno or -1  # EAFNOSUPPORT: no IPv6 in this kernel
    with sock:
        # Set either way: with SO_REUSEADDR, Linux also lets a bind share the port with a socket
        # that is bound but not yet listening, so the plain test must have it off.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse_address))
        try:
            if probe.v6only is not None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, probe.v6only)
            sock.bind((probe.address, port))
        except OSError as exc:
            return exc.errno or -1
    return 0


def first_errno(
    probes: list[BindProbe],
    port: int,
    *,
    reuse_address: bool = False,
    kind: socket.SocketKind = socket.SOCK_STREAM,
) -> int:
    """0 when every probe binds `port`, else the first failure's errno."""
    for probe in probes:
        if code := bind_errno(probe, port, reuse_address=reuse_address, kind=kind):
            return code
    return 0


def server_bind_errno(port: int, *, reuse_address: bool = False) -> int:
    """What a server started now on the wildcard or loopback would get from bind(): 0 or errno.

    Without `reuse_address` that is a plain server; with it, one that sets SO_REUSEADDR (most
    development servers do, see ports.inventory.diagnosis).
    """
    return first_errno([*wildcard_probes(), LOOPBACK], port, reuse_address=reuse_address)


def first_bindable(start: int, *, skip: Container[int] = ()) -> int | None:
    """The first unprivileged port from `start` up that a plain server binds and `skip` lacks."""
    probes = [*wildcard_probes(), LOOPBACK]
    for port in range(max(start, FIRST_UNPRIVILEGED_PORT), PORT_MAX + 1):
        if port not in skip and first_errno(probes, port) == 0:
            return port
    return None
