"""Free ports: which ports nothing on this machine uses, and which one a project should take.

No Django: `serve`, the registry and the API all ask here. A port counts as free only when
both the host and the wildcard address can bind it.
"""

from __future__ import annotations

import errno
import ipaddress
import operator
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from console.foundation.limits import PORT_MAX, validate_port
from ports.errors import NoFreePort
from ports.inventory.records import Snapshot

FIRST_UNPRIVILEGED_PORT = 1024
MAX_FREE_PORTS = 100


def find_free_port(
    near: int = 8000,
    count: int = 1,
    host: str = "127.0.0.1",
    *,
    exclude: Iterable[int] = (),
    allow_privileged: bool = False,
) -> list[int]:
    """The first `count` TCP ports from `near` upward that nothing on this machine is using.

    A port counts as free only when it can be bound on `host` *and* on the wildcard address. On
    Linux a bind to 127.0.0.1 succeeds while 127.0.0.2, [::1] or a v6-only [::] hold the same
    port; the dual-stack wildcard bind collides with every TCP socket on the port, so it also
    keeps the answer right for a server started later with `--lan`. Ports in TIME_WAIT or used
    by outgoing connections count as busy. A port can of course be taken between this answer
    and its use.
    """
    validate_port("near", near)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_FREE_PORTS:
        raise ValueError(f"count must be an integer between 1 and {MAX_FREE_PORTS}, got {count!r}")
    family, address = _host_address(host)
    if _bind_probe(family, address, 0, None) in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        raise ValueError(f"{host} is not an address of this machine")
    skip = {operator.index(port) for port in exclude}
    start = near if allow_privileged else max(near, FIRST_UNPRIVILEGED_PORT)
    wildcards = _wildcard_probes()

    found: list[int] = []
    for port in range(start, PORT_MAX + 1):
        if port in skip:
            continue
        if _bindable(port, family, address, wildcards):
            found.append(port)
            if len(found) == count:
                return found
    raise NoFreePort(
        f"no free port between {start} and {PORT_MAX} on {host}"
        + (f" (found {len(found)} of {count})" if found else "")
    )


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """One port, judged as find_free_port judges every port it offers."""
    validate_port("port", port)
    family, address = _host_address(host)
    return _bindable(port, family, address, _wildcard_probes())


def _bindable(port: int, family: socket.AddressFamily, address: str, wildcards) -> bool:
    # EADDRINUSE means taken; EACCES (a port below 1024 without the right) means not for us.
    probes = [*wildcards, (family, address, None)]
    return all(_bind_probe(fam, addr, port, v6only) == 0 for fam, addr, v6only in probes)


@dataclass(frozen=True)
class Allocation:
    port: int
    reason: str  # why this port, in a sentence
    skipped: tuple[str, ...] = ()  # why each earlier candidate was passed over
    outside_registry: bool = False  # True when none of the project's own ports was free


def allocate(
    name: str,
    candidates: Sequence[int],
    *,
    reserved_by_others: Mapping[int, str],
    snapshot: Snapshot | None = None,
    host: str = "127.0.0.1",
) -> Allocation:
    """The port project `name` should use now: its preferred port, else the first free fallback.

    Each candidate gets a bind test; the skipped ones say why ("5000 held by python (pid 42):
    other-project"). When all are taken, the next free port above the preferred one that no
    project reserves is offered, and the reason says so. A fallback another project reserves is
    still this project's to use: the registry lists it for both, and the warning was given when
    it was registered.
    """
    if not candidates:
        raise ValueError("a project needs at least a preferred port")
    snapshot = snapshot if snapshot is not None else _inventory_snapshot()
    skipped: list[str] = []
    for position, port in enumerate(candidates):
        if is_port_free(port, host):
            kind = "preferred port" if position == 0 else f"fallback #{position}"
            reason = f"{port} is {name}'s {kind} and is free"
            return Allocation(
                port, reason + (f" ({'; '.join(skipped)})" if skipped else ""), tuple(skipped)
            )
        skipped.append(_why_busy(snapshot, port, reserved_by_others))
    (port,) = find_free_port(candidates[0] + 1, host=host, exclude=reserved_by_others.keys())
    return Allocation(
        port,
        f"all of {name}'s ports are taken ({'; '.join(skipped)}); {port} is the next free port "
        f"above {candidates[0]} that no project reserves",
        tuple(skipped),
        outside_registry=True,
    )


def _why_busy(snapshot: Snapshot, port: int, reserved_by_others: Mapping[int, str]) -> str:
    holders = [listener for listener in snapshot.on_port(port) if listener.proto == "tcp"]
    if holders and holders[0].process is not None:
        process = holders[0].process
        text = f"{port} held by {process.name} (pid {process.pid})"
    elif holders:
        text = f"{port} held by a process of uid {holders[0].uid}"
    else:
        text = f"{port} busy (TIME_WAIT or outgoing connections)"
    if owner := reserved_by_others.get(port):
        text += f": {owner}"
    return text


def _host_address(host: str) -> tuple[socket.AddressFamily, str]:
    if isinstance(host, str) and host.lower() == "localhost":
        return socket.AF_INET, "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be an IP address or 'localhost', got {host!r}") from None
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    return family, str(ip)


# One test bind: (family, address, IPV6_V6ONLY to set, or None to leave the default).
_BindProbe = tuple[socket.AddressFamily, str, int | None]


def _wildcard_probes() -> list[_BindProbe]:
    """Binds that, together, collide with any TCP socket on a port: [::] dual-stack if possible."""
    v4: _BindProbe = (socket.AF_INET, "0.0.0.0", None)
    if socket.has_ipv6:
        # Dual-stack first; systems without it (OpenBSD) need a v4 and a v6-only probe.
        dual_stack: list[_BindProbe] = [(socket.AF_INET6, "::", 0)]
        for v6only, probes in ((0, dual_stack), (1, [v4, (socket.AF_INET6, "::", 1)])):
            if _bind_probe(socket.AF_INET6, "::", 0, v6only) == 0:
                return probes
    return [v4]  # IPv6 disabled


def _bind_probe(family: socket.AddressFamily, address: str, port: int, v6only: int | None) -> int:
    """0 when `address:port` can be bound right now, else the errno (EADDRINUSE, EACCES, ...)."""
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return exc.errno or -1  # EAFNOSUPPORT: no IPv6 in this kernel
    with sock:
        # SO_REUSEADDR stays off: with it, Linux lets the probe share the port with a socket that
        # is bound but not yet listening.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        try:
            if v6only is not None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            sock.bind((address, port))
        except OSError as exc:
            return exc.errno or -1
    return 0


def _inventory_snapshot() -> Snapshot:
    # Imported on first use: find_free_port needs no inventory engine or caches.
    from ports import inventory

    return inventory.snapshot()
