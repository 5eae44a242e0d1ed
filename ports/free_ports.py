"""Free ports: which ports nothing on this machine uses, and which one a project should take.

No Django: `serve`, the registry and the API all ask here. A port counts as free only when
both the host and the wildcard address can bind it.
"""

from __future__ import annotations

import errno
import operator
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from console.foundation.limits import PORT_MAX, validate_port
from ports.errors import NoFreePort
from ports.inventory import binding
from ports.inventory.diagnosis import TimeWait, endpoint, time_wait_by_port, time_wait_on
from ports.inventory.records import Snapshot

FIRST_UNPRIVILEGED_PORT = binding.FIRST_UNPRIVILEGED_PORT
MAX_FREE_PORTS = 100
# A scan near a crowded range can pass over thousands of ports; the answer keeps the first ones,
# which are the ones a user asked about (the ports just above `near`).
MAX_SKIPPED_REPORTED = 50


class SkipReason(StrEnum):
    HELD = "held"  # a TCP listener holds it
    RESERVED = "reserved"  # a project in the registry lists it
    TIME_WAIT = "time-wait"  # only closed connections remain, for up to 60 s
    BUSY = "busy"  # bind() fails with nothing listening: a bound socket, outgoing connections
    PRIVILEGED = "privileged"  # below 1024
    EXCLUDED = "excluded"  # the caller asked to leave it out


@dataclass(frozen=True)
class SkippedPort:
    port: int
    reason: SkipReason
    detail: str  # "held by python (pid 42) on 127.0.0.1:8000", "reserved by project shop", ...


@dataclass(frozen=True)
class FreePortScan:
    ports: list[int]
    skipped: list[SkippedPort]  # the first MAX_SKIPPED_REPORTED ports passed over, in order
    skipped_total: int = 0  # all ports passed over, reported or not


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
    return _scan(near, count, host, exclude, {}, allow_privileged, explain=False).ports


def scan_free_ports(
    near: int = 8000,
    count: int = 1,
    host: str = "127.0.0.1",
    *,
    exclude: Iterable[int] = (),
    reserved: Mapping[int, str] | None = None,
    allow_privileged: bool = False,
    snapshot: Snapshot | None = None,
) -> FreePortScan:
    """find_free_port's answer, with why each port before the last one found was passed over.

    `reserved` maps a port to the project that lists it (the registry's reserved_ports()): never
    offered, and named in the reason. The inventory snapshot (to name a holder) and the
    TIME_WAIT dump are taken only when some port turns out to be busy.
    """
    return _scan(near, count, host, exclude, reserved or {}, allow_privileged, snapshot=snapshot)


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """One port, judged as find_free_port judges every port it offers."""
    validate_port("port", port)
    probes = [*binding.wildcard_probes(), binding.host_probe(host)]
    return binding.first_errno(probes, port) == 0


def _scan(
    near: int,
    count: int,
    host: str,
    exclude: Iterable[int],
    reserved: Mapping[int, str],
    allow_privileged: bool,
    *,
    explain: bool = True,
    snapshot: Snapshot | None = None,
) -> FreePortScan:
    validate_port("near", near)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_FREE_PORTS:
        raise ValueError(f"count must be an integer between 1 and {MAX_FREE_PORTS}, got {count!r}")
    target = binding.host_probe(host)
    if binding.bind_errno(target, 0) in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        raise ValueError(f"{host} is not an address of this machine")
    excluded = {operator.index(port) for port in exclude}
    start = near if allow_privileged else max(near, FIRST_UNPRIVILEGED_PORT)
    probes = [*binding.wildcard_probes(), target]
    reasons = _SkipReasons(reserved, snapshot, explain)
    if start > near:
        reasons.add(
            near,
            SkipReason.PRIVILEGED,
            f"{near}-{start - 1} are privileged (binding them needs root or "
            "CAP_NET_BIND_SERVICE); the search starts at 1024",
        )

    found: list[int] = []
    for port in range(start, PORT_MAX + 1):
        if port in reserved:
            reasons.add(port, SkipReason.RESERVED, f"reserved by project {reserved[port]}")
        elif port in excluded:
            reasons.add(port, SkipReason.EXCLUDED, "excluded by the request")
        elif code := binding.first_errno(probes, port):
            reasons.busy(port, code)
        else:
            found.append(port)
            if len(found) == count:
                return FreePortScan(found, reasons.reported, reasons.total)
    raise NoFreePort(
        f"no free port between {start} and {PORT_MAX} on {host}"
        + (f" (found {len(found)} of {count})" if found else "")
    )


class _SkipReasons:
    """The skipped ports of one scan, each told apart only while the report has room for it."""

    def __init__(
        self, reserved: Mapping[int, str], snapshot: Snapshot | None, explain: bool
    ) -> None:
        self.reserved = reserved
        self.reported: list[SkippedPort] = []
        self.total = 0
        self._explain = explain
        self._snapshot = snapshot
        self._time_wait: dict[int, TimeWait] | None = None

    def add(self, port: int, reason: SkipReason, detail: str) -> None:
        self.total += 1
        if self._explain and len(self.reported) < MAX_SKIPPED_REPORTED:
            self.reported.append(SkippedPort(port, reason, detail))

    def busy(self, port: int, code: int) -> None:
        if not self._explain or len(self.reported) >= MAX_SKIPPED_REPORTED:
            self.total += 1
            return
        if code == errno.EACCES:
            self.add(port, SkipReason.PRIVILEGED, f"binding it needs root: {os.strerror(code)}")
        elif code != errno.EADDRINUSE:
            self.add(port, SkipReason.BUSY, f"bind() fails: {os.strerror(code)}")
        elif held := _holder_text(self._inventory(), port):
            self.add(port, SkipReason.HELD, held)
        elif waiting := self._time_waits().get(port):
            self.add(port, SkipReason.TIME_WAIT, waiting.describe())
        else:
            self.add(
                port,
                SkipReason.BUSY,
                "bind() fails though nothing listens: a socket bound without listening, "
                "or outgoing connections from this port",
            )

    def _inventory(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = _inventory_snapshot()
        return self._snapshot

    def _time_waits(self) -> dict[int, TimeWait]:
        if self._time_wait is None:
            self._time_wait = time_wait_by_port()
        return self._time_wait


def _holder_text(snapshot: Snapshot, port: int) -> str:
    """ "held by python (pid 42) on 127.0.0.1:8000", or "" when no TCP listener is seen."""
    holders = [listener for listener in snapshot.on_port(port) if listener.proto == "tcp"]
    if not holders:
        return ""
    where = " and ".join(endpoint(each.address, port) for each in holders)
    process = holders[0].process
    if process is not None:
        return f"held by {process.name} (pid {process.pid}) on {where}"
    return f"held by a process of uid {holders[0].uid} on {where}"


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
    elif (waiting := time_wait_on(port)).connections:
        text = f"{port} has {waiting.describe()}"
    else:
        text = f"{port} busy (a socket bound without listening, or outgoing connections)"
    if owner := reserved_by_others.get(port):
        text += f": {owner}"
    return text


def _inventory_snapshot() -> Snapshot:
    # Imported on first use: find_free_port needs no inventory engine or caches.
    from ports import inventory

    return inventory.snapshot()
