"""The portable backend: listeners and their processes through psutil (macOS, BSD, Windows).

Slower than sock_diag and blind to some things it cannot report: psutil gives no socket inode
(rows carry inode 0), on Linux only one pid per socket, and not IPV6_V6ONLY, so rows carry
dual_stack=False even for a dual-stack [::] socket (the diagnosis then asks bind() instead).
Sockets on the same address and port are merged into one row whose pids are all their holders,
which is what a forked server's shared socket looks like elsewhere.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import psutil

from ports.inventory.processes import CMDLINE_MAX
from ports.inventory.records import ProcessInfo
from ports.inventory.sockdiag import SocketRow

_FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
_PROTOS = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}
UNKNOWN_UID = -1


class _ProcessKey(NamedTuple):
    """One process, told from a later one behind the same pid by its start time."""

    pid: int
    create_time: float


class _Connection(NamedTuple):
    family: int
    type: int
    laddr: Any
    raddr: Any
    status: str
    pid: int | None


class PsutilListeners:
    """Not thread-safe: the caller (Inventory) serialises snapshots."""

    def __init__(self) -> None:
        # (pid, create_time) -> Process; psutil keeps the CPU baseline inside the object.
        self._processes: dict[_ProcessKey, psutil.Process] = {}

    def listening(self) -> tuple[list[tuple[SocketRow, list[int]]], bool]:
        """[(row, holder pids)], and whether every socket's owner could be seen."""
        complete = True
        try:
            connections: Iterable[Any] = psutil.net_connections(kind="inet")
        except psutil.AccessDenied:
            # macOS without root: walk the processes we may inspect; others stay invisible.
            connections, complete = self._per_process_connections()

        holders: dict[tuple[str, str, str, int], list[int | None]] = {}
        for conn in connections:
            proto = _PROTOS.get(conn.type)
            family = _FAMILIES.get(conn.family)
            if proto is None or family is None or not conn.laddr:
                continue
            if proto == "tcp" and conn.status != psutil.CONN_LISTEN:
                continue
            if proto == "udp" and conn.raddr:
                continue  # a connected UDP socket is a client, not a listener
            key = (proto, family, conn.laddr.ip, conn.laddr.port)
            holders.setdefault(key, []).append(conn.pid)

        rows: list[tuple[SocketRow, list[int]]] = []
        for (proto, family, address, port), pids in holders.items():
            known = sorted({pid for pid in pids if pid is not None})
            if not known:
                complete = False
            uid = self._uid(known[0]) if known else UNKNOWN_UID
            rows.append((SocketRow(proto, family, address, port, 0, uid), known))
        return rows, complete

    def _per_process_connections(self) -> tuple[list[_Connection], bool]:
        connections: list[_Connection] = []
        complete = True
        for process in psutil.process_iter():
            try:
                for conn in process.net_connections(kind="inet"):
                    # Process.net_connections() rows carry no pid: add it.
                    connections.append(
                        _Connection(
                            conn.family, conn.type, conn.laddr, conn.raddr, conn.status, process.pid
                        )
                    )
            except (psutil.AccessDenied, psutil.ZombieProcess):
                complete = False
            except psutil.NoSuchProcess:
                continue
        return connections, complete

    def _uid(self, pid: int) -> int:
        try:
            return psutil.Process(pid).uids().real
        except (psutil.Error, AttributeError):  # AttributeError: Windows has no uids()
            return UNKNOWN_UID

    def create_time(self, pid: int) -> float | None:
        try:
            return psutil.Process(pid).create_time()
        except psutil.Error:
            return None

    def info(self, pid: int) -> ProcessInfo | None:
        """Details of an owner, with cpu_percent since the previous call for the same process."""
        try:
            fresh = psutil.Process(pid)
            key = _ProcessKey(pid, fresh.create_time())
        except psutil.Error:
            return None
        process = self._processes.get(key)
        first_sight = process is None
        if process is None:
            process = self._processes[key] = fresh
        try:
            with process.oneshot():
                cpu = process.cpu_percent(interval=None)
                return ProcessInfo(
                    pid=pid,
                    name=process.name(),
                    user=_safe(process.username),
                    cmdline=" ".join(arg for arg in _safe(process.cmdline) or [] if arg)[
                        :CMDLINE_MAX
                    ],
                    cwd=_safe(process.cwd),
                    create_time=round(key.create_time, 2),
                    ppid=_safe(process.ppid),
                    rss=_safe(lambda: process.memory_info().rss),
                    # psutil's first reading has no baseline and says 0.0; ours says "unknown".
                    cpu_percent=None if first_sight else round(cpu, 1),
                )
        except psutil.Error:
            return None

    def forget_except(self, alive: set[int]) -> None:
        for key in [key for key in self._processes if key.pid not in alive]:
            del self._processes[key]


def process_info(pid: int) -> ProcessInfo | None:
    """A fresh read of one process through psutil; None when it is gone."""
    return PsutilListeners().info(pid)


def _safe[T](read: Callable[[], T]) -> T | None:
    try:
        return read()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None
