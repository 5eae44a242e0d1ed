"""Why is this port busy? "Address already in use", explained in plain words, with the fix.

Pure: give it a snapshot (and, for tests, how to count TIME_WAIT connections); no Django.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import psutil

from ports.inventory.records import Listener, Snapshot

# Services whose process is normally adopted by init: an orphan of these is no accident.
SYSTEM_SERVICES = (
    "PostgreSQL",
    "MySQL",
    "MariaDB",
    "Redis",
    "RabbitMQ",
    "MQTT",
    "NATS",
    "SSH",
    "DNS",
    "Erlang",
    "memcached",
    "MongoDB",
    "Elasticsearch",
)

FREE, HELD, INHERITED, TIME_WAIT, BUSY = "free", "held", "inherited", "time-wait", "busy"


class Opener(NamedTuple):
    """The process that held a socket when it was first seen (the sampler's history knows it)."""

    pid: int
    name: str


ProjectOf = Callable[[Listener], str | None]
OpenerOf = Callable[[Listener], Opener | None]


@dataclass
class Explanation:
    kind: str  # free | held | inherited | time-wait | busy
    summary: str  # one sentence on why
    fix: str  # what to do about it
    holders: list[Listener] = field(default_factory=list)
    time_wait: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "fix": self.fix,
            "time_wait_connections": self.time_wait,
        }


def count_time_wait(port: int) -> int:
    try:
        from ports.inventory import sockdiag

        return sockdiag.time_wait_count(port)
    except (OSError, AttributeError):
        # No sock_diag here (another OS, a locked-down sandbox): psutil sees the same table.
        return sum(
            1
            for conn in psutil.net_connections(kind="tcp")
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_TIME_WAIT
        )


def explain_port(
    port: int,
    snapshot: Snapshot,
    *,
    project_of: ProjectOf = lambda listener: None,
    time_wait: Callable[[int], int] = count_time_wait,
    parent_alive: Callable[[int], bool] = psutil.pid_exists,
    opener_of: OpenerOf = lambda listener: None,
) -> Explanation:
    """`opener_of` names the process that held this very socket when it was first seen (from
    the sampler's history); it is how an inherited socket is told from one opened in place."""
    holders = [listener for listener in snapshot.on_port(port) if listener.proto == "tcp"]
    if holders:
        return _explain_holders(port, holders, project_of, parent_alive, opener_of)
    waiting = time_wait(port)
    if waiting:
        return Explanation(
            TIME_WAIT,
            f"Nothing listens on port {port}; only {waiting} closed connection"
            f"{'s' if waiting != 1 else ''} in TIME_WAIT remain"
            f"{'' if waiting != 1 else 's'}. The kernel frees them by itself within about a "
            "minute.",
            "Nothing to kill. Wait a minute, or let the server set SO_REUSEADDR (Flask, Django, "
            "uvicorn and Node do), which can bind the port right away.",
            time_wait=waiting,
        )
    udp = [listener for listener in snapshot.on_port(port) if listener.proto == "udp"]
    if udp:
        return Explanation(
            BUSY,
            f"Only a UDP socket uses port {port}; TCP servers can bind it.",
            "Nothing to do for a TCP server.",
            holders=udp,
        )
    return Explanation(
        FREE,
        f"Port {port} is free: nothing listens and no connection lingers.",
        "Start your server on it.",
    )


def _explain_holders(
    port: int,
    holders: list[Listener],
    project_of: ProjectOf,
    parent_alive: Callable[[int], bool],
    opener_of: OpenerOf,
) -> Explanation:
    listener = holders[0]
    process = listener.process
    if process is None:
        return Explanation(
            HELD,
            f"Port {port} is held by a process of uid {listener.uid} that this console cannot "
            "see (another user's, or outside this process namespace).",
            "Run the console as that user (or root) to see and stop it, or pick another port.",
            holders,
        )
    who = f"{process.name} (pid {process.pid})"
    project = project_of(listener)
    owner = f" of project {project}" if project else ""
    opener = opener_of(listener)
    if opener is not None and opener.pid not in listener.pids and not parent_alive(opener.pid):
        return Explanation(
            INHERITED,
            f"Port {port} is held by {who}{owner}, which inherited the listening socket: "
            f"{opener.name} (pid {opener.pid}) opened it and has exited, but its child kept the "
            "socket open (a reloader child, a forked worker, a shell job).",
            f"Terminate pid {process.pid}: the port frees when the last holder exits.",
            holders,
        )
    if opener is None and _looks_inherited(listener, parent_alive):
        return Explanation(
            INHERITED,
            f"Port {port} is held by {who}{owner}, whose parent has exited: it most likely "
            "inherited the listening socket from the server that started it (a reloader child, "
            "a forked worker, a shell job).",
            f"Terminate pid {process.pid}: the port frees when the last holder exits.",
            holders,
        )
    shared = (
        f", shared with pids {', '.join(map(str, listener.pids[1:]))}"
        if len(listener.pids) > 1
        else ""
    )
    return Explanation(
        HELD,
        f"Port {port} is held by {who}{owner}{shared}: {process.cmdline}",
        "Stop that server (Terminate below, or Ctrl-C in its terminal), or start yours on a "
        "free port.",
        holders,
    )


def _looks_inherited(listener: Listener, parent_alive: Callable[[int], bool]) -> bool:
    """A holder whose parent is gone (adopted by init) and that is not a system service.

    A heuristic: system services are adopted by init on purpose. A dev server of this user
    whose parent exited usually is the orphaned child of a reloader or a shell job.
    """
    process = listener.process
    if process is None or process.ppid is None:
        return False
    orphaned = process.ppid in (0, 1) or not parent_alive(process.ppid)
    system = any(name in (listener.service or "") for name in SYSTEM_SERVICES)
    return orphaned and not system and listener.uid == os.getuid()
