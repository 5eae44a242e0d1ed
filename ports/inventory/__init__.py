"""The port inventory: every listening socket on this machine and the processes holding it.

    from ports import inventory
    snap = inventory.snapshot()          # shared, cached engine; safe to call from any thread
    info = inventory.process_info(pid)   # a fresh read of one process (re-check before signalling)

On Linux the sockets come from netlink sock_diag and their owners from an incremental /proc scan
(`ports.sockdiag`, `ports.procscan`, `ports.procinfo`); elsewhere from psutil
(`ports.psutil_listeners`). Both give the same records (`ports.records`). No Django in here: the
engine is tested and benchmarked on its own, and `python -m ports.inventory` prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, NamedTuple

from ports.inventory import processes, servers, sockdiag
from ports.inventory.hints import command_hint, service_hint
from ports.inventory.processes import CMDLINE_MAX, ProcessDetails
from ports.inventory.records import Listener, ProcessInfo, Server, Snapshot, exposure_of
from ports.inventory.socket_owners import SocketOwners

if TYPE_CHECKING:
    from ports.inventory.psutil_backend import PsutilListeners

__all__ = [
    "CMDLINE_MAX",
    "Inventory",
    "Listener",
    "ProcessInfo",
    "Snapshot",
    "default_inventory",
    "process_info",
    "servers_of",
    "snapshot",
]

BACKENDS = ("auto", "netlink", "psutil")


class _Build(NamedTuple):
    """What the previous netlink snapshot was made from, and what it gave."""

    rows: list[sockdiag.SocketRow]
    inodes: set[int]
    owners: dict[int, list[int]]
    infos: dict[int, ProcessInfo | None]
    listeners: tuple[Listener, ...]
    complete: bool


class Inventory:
    """A snapshot engine holding its caches; reuse one instance, polls after the first are cheap.

    backend: "netlink" (Linux sock_diag + /proc), "psutil" (portable), or "auto" (netlink when
    the kernel answers sock_diag, psutil otherwise). The interval arguments tune the /proc
    resolver (see ports.procscan) and exist mostly for tests.
    """

    def __init__(
        self,
        backend: str = "auto",
        *,
        full_rescan_every: float = 30.0,
        fallback_scan_every: float = 5.0,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if backend == "auto":
            linux = sys.platform.startswith("linux")
            backend = "netlink" if linux and sockdiag.available() else "psutil"
        self.backend = backend
        self._lock = threading.Lock()
        self._exposures: dict[str, str] = {}
        self._diag: sockdiag.SockDiagClient | None = None
        self._owners: SocketOwners | None = None
        self._details: ProcessDetails | None = None
        self._psutil: PsutilListeners | None = None
        # inode -> (row, listener) from the previous snapshot, reused while nothing changed.
        self._previous: dict[int, tuple[sockdiag.SocketRow, Listener]] = {}
        self._last_build: _Build | None = None
        self._table = servers.ProcessTable()
        self._holders: servers.HoldersCache = {}
        if backend == "netlink":
            self._diag = sockdiag.SockDiagClient()
            self._owners = SocketOwners(
                full_rescan_every=full_rescan_every, fallback_scan_every=fallback_scan_every
            )
            self._details = ProcessDetails()
        else:
            from ports.inventory.psutil_backend import PsutilListeners  # psutil only when needed

            self._psutil = PsutilListeners()

    def snapshot(self) -> Snapshot:
        """Every listening TCP socket and bound, unconnected UDP socket, IPv4 and IPv6."""
        with self._lock:
            started = time.perf_counter()
            sampled_at = time.time()
            if self.backend == "netlink":
                listeners, complete = self._netlink_listeners()
            else:
                listeners, complete = self._psutil_listeners()
            return Snapshot(
                sampled_at=sampled_at,
                complete=complete,
                listeners=listeners,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )

    def process_info(self, pid: int) -> ProcessInfo | None:
        """A fresh read of one process (no cache), or None when it is gone."""
        if self.backend == "netlink":
            return processes.process_info(pid)
        from ports.inventory.psutil_backend import process_info as psutil_process_info

        return psutil_process_info(pid)

    def servers_of(self, listeners: Iterable[Listener]) -> dict[int, Server | None]:
        """The server of each listener, by inode, from one read of the process table."""
        # Imported here: it brings an HTTP client (the Docker Engine's) that a snapshot and
        # `python -m ports.inventory`, which people type, never need.
        from ports.inventory import managers

        listeners = list(listeners)
        table = self._table.fresh()
        if any(table.node(pid) is None for listener in listeners for pid in listener.pids):
            table = self._table.fresh(max_age=0)  # a holder newer than the table's last read
        return {
            listener.inode: servers.server_of(listener, table, managers.manager_of)
            for listener in listeners
        }

    def close(self) -> None:
        if self._diag is not None:
            self._diag.close()

    @property
    def resolver(self) -> SocketOwners | None:
        """The /proc resolver (netlink backend), for diagnostics: its `counters` show the work."""
        return self._owners

    # -- backends ---------------------------------------------------------------------------------

    def _netlink_listeners(self) -> tuple[tuple[Listener, ...], bool]:
        assert self._diag is not None and self._owners is not None and self._details is not None
        rows = self._diag.listening()
        last = self._last_build
        # sockdiag hands back the same list while the kernel's replies did not change.
        if last is not None and last.rows is rows:
            inodes = last.inodes
        else:
            inodes = {row.inode for row in rows}
        owners, stats, _missing = self._owners.resolve(inodes)
        now = time.monotonic()
        details = self._details
        # The resolver hands out the same ProcStat until it re-reads it (at most once a second),
        # and ProcessDetails the same ProcessInfo for the same ProcStat: on an idle poll every
        # comparison below is an identity check.
        infos = {pid: details.info(pid, stat, now) for pid, stat in stats.items()}
        details.forget_except({(pid, stat.start_ticks) for pid, stat in stats.items()})

        # An idle machine: same sockets, same holders, same process records (ProcessDetails hands
        # out the same object while nothing in it changed). Then the last answer is still right.
        same_owners = last is not None and (last.owners is owners or last.owners == owners)
        if last is not None and last.rows is rows and same_owners:
            if last.infos == infos:
                return last.listeners, last.complete
            # Only some owners' figures (CPU, rss) changed: swap those records in place.
            result, complete = self._with_new_infos(last, infos)
            self._last_build = _Build(rows, inodes, owners, infos, result, complete)
            return result, complete

        listeners: list[Listener] = []
        complete = True
        previous_by_inode = self._previous
        current: dict[int, tuple[sockdiag.SocketRow, Listener]] = {}
        for row in rows:
            pids = owners.get(row.inode)
            info = None
            if pids:
                if len(pids) > 1:
                    # Oldest first: a pre-fork master before its workers.
                    pids = sorted(pids, key=lambda pid: (stats[pid].start_ticks, pid))
                info = infos[pids[0]]
            if info is None and (pids or row.inode):
                # An owner we cannot see, or one that exited before we read it. (Inode 0 is a
                # socket the kernel holds itself, e.g. WireGuard's: no process to find.)
                complete = False
            holders = tuple(pids or ())
            listener = None
            previous = previous_by_inode.get(row.inode)
            if previous is not None:
                # A plain pair, unpacked: one is built per row, and a NamedTuple builds about
                # six times slower (400 ns against 70).
                previous_row, previous_listener = previous
                if (
                    previous_row is row
                    and previous_listener.process is info
                    and previous_listener.pids == holders
                ):
                    listener = previous_listener
            if listener is None:
                listener = self._listener(
                    row,
                    holders,
                    [infos[pid] for pid in holders],
                    previous[1] if previous is not None else None,
                )
            if row.inode:
                current[row.inode] = (row, listener)
            listeners.append(listener)
        self._previous = current
        listeners.sort(key=_listing_order)
        result = tuple(listeners)
        self._last_build = _Build(rows, inodes, owners, infos, result, complete)
        return result, complete

    def _with_new_infos(
        self, last: _Build, infos: dict[int, ProcessInfo | None]
    ) -> tuple[tuple[Listener, ...], bool]:
        """The last listeners with the records of owners whose ProcessInfo changed replaced.

        Same rows and same holders, so the order and every other field stay as they were.
        """
        old_infos = last.infos
        changed = {pid for pid, info in infos.items() if old_infos.get(pid) is not info}
        previous_by_inode = self._previous
        listeners = list(last.listeners)
        for index, listener in enumerate(listeners):
            pids = listener.pids
            if pids and pids[0] in changed:
                entry = previous_by_inode.get(listener.inode)
                if entry is None:
                    continue
                row, built = entry
                if built is not listener:
                    continue
                replaced = self._listener(row, pids, [infos[pids[0]]], built, keep_holders=True)
                listeners[index] = replaced
                previous_by_inode[listener.inode] = (row, replaced)
        complete = not any(
            listener.process is None and (listener.pids or listener.inode) for listener in listeners
        )
        return tuple(listeners), complete

    def _psutil_listeners(self) -> tuple[tuple[Listener, ...], bool]:
        assert self._psutil is not None
        rows, complete = self._psutil.listening()
        infos: dict[int, ProcessInfo | None] = {}
        listeners: list[Listener] = []
        for row, pids in rows:
            if len(pids) > 1:
                created = {pid: self._psutil.create_time(pid) or float("inf") for pid in pids}
                pids = sorted(pids, key=lambda pid: (created[pid], pid))
            for pid in pids:
                if pid not in infos:
                    infos[pid] = self._psutil.info(pid)
            holder_infos = [infos[pid] for pid in pids]
            if not holder_infos or holder_infos[0] is None:
                complete = False
            listeners.append(self._listener(row, tuple(pids), holder_infos, None))
        self._psutil.forget_except(set(infos))
        listeners.sort(key=_listing_order)
        return tuple(listeners), complete

    def _listener(
        self,
        row: sockdiag.SocketRow,
        pids: tuple[int, ...],
        infos: list[ProcessInfo | None],
        previous: Listener | None,
        *,
        keep_holders: bool = False,
    ) -> Listener:
        """A listener record; `infos` are its holders' (only the first when `keep_holders`:
        then the holders are `previous`'s, as only the oldest holder's figures changed)."""
        exposure = self._exposures.get(row.address)
        if exposure is None:
            exposure = self._exposures[row.address] = exposure_of(row.address)
        info = infos[0] if infos else None
        if keep_holders and previous is not None:
            holders = previous.holders
            service = previous.service
        else:
            holders = servers.holders_of(pids, infos, self._holders) if pids else ()
            service = self._service(row, infos, previous)
        return Listener(
            proto=row.proto,
            family=row.family,
            address=row.address,
            port=row.port,
            inode=row.inode,
            uid=row.uid,
            pids=pids,
            process=info,
            service=service,
            exposure=exposure,
            holders=holders,
            dual_stack=row.dual_stack,
        )

    @staticmethod
    def _service(
        row: sockdiag.SocketRow, infos: list[ProcessInfo | None], previous: Listener | None
    ) -> str | None:
        """The hint follows the tree: the first holder, oldest first, whose command names a
        product (a uvicorn --reload child says only "python -c ... spawn_main"). A socket whose
        named holder exited (an orphaned worker) keeps the name it had."""
        for info in infos:
            if info is not None:
                hint = command_hint(info.name, info.cmdline)
                if hint is not None:
                    return service_hint(row.port, row.proto, info.name, info.cmdline)
        if previous is not None and previous.service and previous.inode == row.inode:
            return previous.service
        if len(infos) > 1 and servers.environ_kind(info.pid for info in infos if info):
            return "Flask (Werkzeug)"
        info = infos[0] if infos else None
        if info is not None:
            return service_hint(row.port, row.proto, info.name, info.cmdline)
        return service_hint(row.port, row.proto)


def _listing_order(listener: Listener) -> tuple[int, str, str, str]:
    return (listener.port, listener.proto, listener.family, listener.address)


# -- the shared default engine -------------------------------------------------------------------

_default: Inventory | None = None
_default_lock = threading.Lock()


def default_inventory() -> Inventory:
    """The process-wide engine, created on first use; its caches make later snapshots cheap."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Inventory()
        return _default


def snapshot() -> Snapshot:
    """A snapshot from the shared engine. Thread-safe: concurrent callers take turns."""
    return default_inventory().snapshot()


def process_info(pid: int) -> ProcessInfo | None:
    """A fresh read of one process, e.g. to re-check create_time before terminating it."""
    return default_inventory().process_info(pid)


def servers_of(listeners: Iterable[Listener]) -> dict[int, Server | None]:
    """Each listener's server (by inode): its root process, kind, tree and manager."""
    return default_inventory().servers_of(listeners)


# -- command line --------------------------------------------------------------------------------


def as_json(listener: Listener) -> dict[str, Any]:
    return {**asdict(listener), "pid": listener.pid, "id": listener.id}


def format_table(snap: Snapshot, width: int | None = None) -> str:
    width = width or shutil.get_terminal_size((160, 24)).columns
    headers = ("PROTO", "ADDRESS", "PORT", "EXPOSURE", "PID(S)", "USER", "PROCESS", "SERVICE")
    rows = []
    for listener in snap.listeners:
        process = listener.process
        proto = listener.proto + ("6" if listener.family == "ipv6" else "")
        address = f"[{listener.address}]" if listener.family == "ipv6" else listener.address
        pids = ",".join(map(str, listener.pids)) or "?"
        user = (process.user if process else None) or f"uid {listener.uid}"
        rows.append(
            (
                proto,
                address,
                str(listener.port),
                listener.exposure,
                pids,
                user,
                process.name if process else "?",
                listener.service or "",
                process.cmdline if process else "",
            )
        )
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    widths = [min(w, 40) for w in widths]
    used = sum(widths) + 2 * len(widths)
    command_width = max(width - used, 20)

    def line(cells: tuple[str, ...]) -> str:
        fixed = "  ".join(_fit(cell, w) for cell, w in zip(cells, widths, strict=False))
        return f"{fixed}  {_fit(cells[-1], command_width)}".rstrip() if len(cells) > 8 else fixed

    out = [line((*headers, "COMMAND"))]
    out.extend(line(row) for row in rows)
    unknown = sum(1 for listener in snap.listeners if not listener.pids)
    footer = f"{len(snap.listeners)} listeners in {snap.duration_ms:.1f} ms"
    if not snap.complete:
        footer += f"; incomplete: {unknown} without a readable owner (another user's or outside"
        footer += " this pid namespace; run as root to see more)"
    out.append(footer)
    return "\n".join(out)


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ports.inventory", description="List listening sockets and their owners."
    )
    parser.add_argument("--json", action="store_true", help="print the records as a JSON list")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    args = parser.parse_args(argv)
    inventory = Inventory(backend=args.backend)
    snap = inventory.snapshot()
    inventory.close()
    try:
        if args.json:
            # One listener per line: grep-able, and the C encoder (an indented dump takes the
            # pure-Python one, a third of this command's time at 1,000 listeners).
            lines = ",\n".join(json.dumps(as_json(listener)) for listener in snap.listeners)
            sys.stdout.write(f"[\n{lines}\n]\n" if lines else "[]\n")
        else:
            print(format_table(snap))
        sys.stdout.flush()
    except BrokenPipeError:
        # Piped into `head`: not an error. Point stdout at devnull so the exit flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
