"""Stopping a server whole: its root and every process of its tree, or its manager's way.

Signalling one holder of a port rarely frees it: a gunicorn master respawns the worker, a
reloader keeps holding the socket it handed to the child, and Django's autoreloader holds none
and restarts the child. So a stop names the server's root (pid and start time, as the listing
shows it), signals the root's process group when it leads one (as Ctrl-C in its terminal does)
or else each process of its tree, waits, escalates to KILL only when asked, and then looks at the
port again: released, or held again by something that restarted it. A server a manager runs
(systemd, a container, pm2, supervisord) is not signalled: the manager would restart it, so the
answer names the manager's own stop command; a container is stopped through the Docker Engine
API when its socket answers.

No Django and no rights check: reached through `ports.operations.stop_for`, which asks the gate.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal as signals
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from console.foundation.limits import validate_port
from ports.errors import Refused, StaleTarget
from ports.inventory import docker_engine, processes
from ports.inventory.records import CHILD, PROCESS, RELOADER, Listener, Manager, Server, Snapshot
from ports.listing import manager_payload
from ports.stopping import (
    CREATE_TIME_TOLERANCE,
    DEFAULT_GRACE_SECONDS,
    KILL_WAIT_SECONDS,
    check_arguments,
    open_pidfd,
    protected_pids,
)

# After the tree has exited, how long to wait for the kernel to drop its sockets from the table.
RELEASE_WAIT_SECONDS = 2.0
CONTAINER_KINDS = ("docker", "podman")

SnapshotFn = Callable[[], Snapshot]
ServersFn = Callable[[Iterable[Listener]], dict[int, Server | None]]


@dataclass(frozen=True, slots=True)
class PlanStep:
    pid: int
    role: str  # the holder's role, "reloader" for a root that holds nothing, "child" for others
    name: str
    signal: str  # "TERM" (then KILL with escalate) | "none" (a container stopped by its engine)
    via: str  # "group" (the root's process group) | "pid" | "container" | "manager"

    def as_dict(self) -> dict:
        return {
            "pid": self.pid,
            "role": self.role,
            "name": self.name,
            "signal": self.signal,
            "via": self.via,
        }


@dataclass(frozen=True, slots=True)
class StopResult:
    server_pid: int
    # "dry-run" | "stopped" (all exited after TERM) | "killed" (KILL was needed) | "still-running"
    # | "managed" (not signalled: see warnings) | "container-stopped"
    outcome: str
    released: bool  # nothing holds the port any more
    respawned: list[dict]  # [{pid, name}] holding the port now that were not in the plan
    plan: list[PlanStep]
    warnings: list[str]
    signals_sent: list[str] = field(default_factory=list)
    manager: Manager | None = None
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict:
        """The answer of the API and the websocket (DESIGN.md's contract)."""
        return {
            "server_pid": self.server_pid,
            "outcome": self.outcome,
            "released": self.released,
            "respawned": self.respawned,
            "plan": [step.as_dict() for step in self.plan],
            "warnings": self.warnings,
            "signals_sent": self.signals_sent,
            "manager": manager_payload(self.manager),
            "elapsed_ms": self.elapsed_ms,
        }


def find_server(
    port: int,
    server_pid: int,
    server_create_time: float,
    *,
    snapshot_fn: SnapshotFn,
    servers_fn: ServersFn,
) -> tuple[Server, list[Listener], list[Listener]]:
    """The server rooted at (server_pid, server_create_time) on `port`, its listeners there,
    and the port's other listeners.

    Raises StaleTarget (409) when that process is no longer the root of a server on the port.
    """
    listeners = snapshot_fn().on_port(port)
    servers = servers_fn(listeners)
    mine = [
        listener
        for listener in listeners
        if (server := servers.get(listener.inode)) is not None and server.pid == server_pid
    ]
    if not mine:
        roots = sorted(
            {f"pid {server.pid} ({server.kind})" for server in servers.values() if server}
        )
        now = f"its server is now {', '.join(roots)}" if roots else "nothing listens there now"
        raise StaleTarget(
            f"pid {server_pid} is not the server on port {port} any more ({now}); "
            "refresh and try again"
        )
    server = servers[mine[0].inode]
    assert server is not None
    if not processes.same_start(server.create_time, server_create_time, CREATE_TIME_TOLERANCE):
        raise StaleTarget(
            f"pid {server_pid} is now a different process (started at {server.create_time:.2f}, "
            f"expected {server_create_time:.2f}); refresh and try again"
        )
    others = [listener for listener in listeners if listener not in mine]
    return server, mine, others


def plan_for(
    server: Server, listeners: list[Listener], group: Iterable[int] = ()
) -> list[PlanStep]:
    """What a stop would signal: the root first, then its tree (and its group's other members)."""
    manager = server.manager
    if manager is not None and manager.restarts:
        via = "container" if manager.kind in CONTAINER_KINDS and manager.container_id else "manager"
        return [PlanStep(server.pid, _root_role(server, listeners), server.name, "none", via)]
    roles = {holder.pid: holder.role for listener in listeners for holder in listener.holders}
    names = {holder.pid: holder.name for listener in listeners for holder in listener.holders}
    via = "group" if server.leads_group else "pid"
    steps = [PlanStep(server.pid, _root_role(server, listeners), server.name, "TERM", via)]
    for pid in [*server.pids[1:], *sorted(set(group) - set(server.pids))]:
        steps.append(PlanStep(pid, roles.get(pid, CHILD), names.get(pid, ""), "TERM", via))
    return steps


def _root_role(server: Server, listeners: list[Listener]) -> str:
    for listener in listeners:
        for holder in listener.holders:
            if holder.pid == server.pid:
                return holder.role
    # Django's autoreloader holds no socket; npm's and sh's wrappers neither.
    return RELOADER if server.pids[1:] else PROCESS


def stop_server(
    port: int,
    server_pid: int,
    server_create_time: float,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    escalate: bool = False,
    dry_run: bool = False,
    *,
    snapshot_fn: SnapshotFn | None = None,
    servers_fn: ServersFn | None = None,
    group_members: Callable[[int], list[int]] | None = None,
    engine: docker_engine.EngineClient | None = None,
) -> StopResult:
    """Stop the server whose root is `server_pid` (started at `server_create_time`) on `port`.

    Raises ValueError for bad arguments, Refused (403) when a process of the tree is protected,
    StaleTarget (409) when that root no longer serves the port.
    """
    started = time.monotonic()
    validate_port("port", port)
    check_arguments(server_pid, server_create_time, grace_seconds, name="server_pid")
    if server_pid <= 1 or server_pid in protected_pids():
        raise Refused(f"pid {server_pid} is protected: the console runs under it or it is init")
    snapshot_fn = snapshot_fn or _inventory_snapshot
    servers_fn = servers_fn or _inventory_servers
    group_members = group_members or _group_members
    server, listeners, others = find_server(
        port, server_pid, server_create_time, snapshot_fn=snapshot_fn, servers_fn=servers_fn
    )
    other_keys = {listener.key for listener in others}
    protected = protected_pids()
    if hit := sorted(protected & set(server.pids)):
        raise Refused(f"pid {hit[0]} in this server's tree is protected: the console runs under it")
    group = group_members(server.pid) if server.leads_group else []
    if protected & set(group):
        # The console shares the root's group (it was started from the same job): signal the
        # tree pid by pid rather than the group.
        server = _without_group(server)
        group = []
    plan = plan_for(server, listeners, group)
    manager = server.manager
    warnings = _plan_warnings(server, plan)

    def result(outcome: str, **fields) -> StopResult:
        return StopResult(
            server_pid=server.pid,
            outcome=outcome,
            plan=plan,
            manager=manager,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
            **{"released": False, "respawned": [], "warnings": warnings, **fields},
        )

    if dry_run:
        return result("dry-run")
    if manager is not None and manager.restarts:
        if plan[0].via != "container":
            return result("managed")
        engine = engine or docker_engine.DEFAULT_ENGINE
        try:
            engine.stop(manager.container_id, timeout_s=round(grace_seconds))
        except docker_engine.EngineError as error:
            raise Refused(f"could not stop container {manager.name}: {error}") from None
        released, respawned = _after(port, listeners, other_keys, set(server.pids), snapshot_fn)
        return result("container-stopped", released=released, respawned=respawned)

    sent, exited = _signal_tree(server, plan, grace_seconds, escalate)
    tree = set(server.pids) | set(group)
    released, respawned = _after(port, listeners, other_keys, tree, snapshot_fn)
    if respawned:
        holders = ", ".join(f"pid {entry['pid']} ({entry['name']})" for entry in respawned)
        warnings.append(f"port {port} is held again by {holders}: something restarted it")
    if not exited:
        outcome = "still-running"
        if not escalate:
            warnings.append(
                f"still running after {grace_seconds:g} s: stop again with escalate to send KILL"
            )
    else:
        outcome = "killed" if "KILL" in sent else "stopped"
    return result(
        outcome, released=released, respawned=respawned, signals_sent=sent, warnings=warnings
    )


def _plan_warnings(server: Server, plan: list[PlanStep]) -> list[str]:
    manager = server.manager
    if manager is not None and manager.restarts:
        if plan[0].via == "container":
            return [f"runs in container {manager.name}: it is stopped through the Docker Engine"]
        how = f": run `{manager.stop_command}`" if manager.stop_command else ""
        return [
            f"{server.kind} is managed by {manager.kind} {manager.name}, which would restart "
            f"it{how}"
        ]
    return []


def _signal_tree(
    server: Server, plan: list[PlanStep], grace_seconds: float, escalate: bool
) -> tuple[list[str], bool]:
    """TERM the root's group (or each process), wait, KILL what is left when asked.

    Each process is pinned by a pidfd first and the root's start time checked again after, so
    neither a reused pid nor a reused group id can be hit.
    """
    pidfds: dict[int, int] = {}
    try:
        for step in plan:
            with contextlib.suppress(ProcessLookupError):
                fd = open_pidfd(step.pid)
                if fd is not None:
                    pidfds[step.pid] = fd
        if server.pid not in pidfds:
            raise StaleTarget(f"pid {server.pid} exited before it could be signalled")
        from ports import inventory

        again = inventory.process_info(server.pid)
        if again is None or not processes.same_start(
            again.create_time, server.create_time, CREATE_TIME_TOLERANCE
        ):
            raise StaleTarget(f"pid {server.pid} exited before it could be signalled")
        sent = ["TERM"]
        _send_all(server, pidfds, signals.SIGTERM)
        exited = _wait_all(pidfds, grace_seconds)
        if not exited and escalate:
            sent.append("KILL")
            _send_all(server, pidfds, signals.SIGKILL)
            exited = _wait_all(pidfds, KILL_WAIT_SECONDS)
        return sent, exited
    finally:
        for pid, fd in pidfds.items():
            os.close(fd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # our own child (a test's server): reap it


def _send_all(server: Server, pidfds: dict[int, int], signum: int) -> None:
    alive = {pid: fd for pid, fd in pidfds.items() if not _exited(fd)}
    in_group: set[int] = set()
    if server.leads_group and server.pid in alive:
        # The root is pinned and alive, so its pid, and with it the group id, is not reused.
        # One signal to the group, as Ctrl-C in its terminal sends: a second TERM makes some
        # servers (uvicorn) skip their graceful shutdown.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signum)
        in_group = {pid for pid in alive if _group_of(pid) == server.pid}
    for pid, fd in alive.items():
        if pid not in in_group:  # a child that moved to a group of its own
            with contextlib.suppress(ProcessLookupError):
                signals.pidfd_send_signal(fd, signum)


def _group_of(pid: int) -> int | None:
    from ports.inventory import processes

    stat = processes.read_stat(pid)
    return stat.pgid if stat is not None else None


def _wait_all(pidfds: dict[int, int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        pending = [fd for fd in pidfds.values() if not _exited(fd)]
        if not pending:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLIN)
        poller.poll(max(1, int(min(remaining, 0.5) * 1000)))


def _exited(pidfd: int) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def _after(
    port: int, ours: list[Listener], others: set, tree: set[int], snapshot_fn: SnapshotFn
) -> tuple[bool, list[dict]]:
    """(released, respawned) once the tree is gone.

    Released: none of the server's sockets is left and nothing new listens on the port.
    Respawned: the holders of sockets on the port that neither the server nor anyone else had
    before the stop (a manager, or a watcher we did not see, started it again).
    """
    our_keys = {listener.key for listener in ours}
    deadline = time.monotonic() + RELEASE_WAIT_SECONDS
    while True:
        now = snapshot_fn().on_port(port)
        left = [listener for listener in now if listener.key in our_keys]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)  # the kernel drops a dead process's sockets a moment after it exits
    fresh = [listener for listener in now if listener.key not in our_keys | others]
    respawned: list[dict] = []
    for listener in fresh:
        for holder in listener.holders:
            if all(entry["pid"] != holder.pid for entry in respawned):
                respawned.append({"pid": holder.pid, "name": holder.name})
    return not left and not fresh, respawned


def _without_group(server: Server) -> Server:
    from dataclasses import replace

    return replace(server, leads_group=False)


def _group_members(pgid: int) -> list[int]:
    """Every process in process group `pgid` (Linux: from /proc)."""
    from ports.inventory import processes

    members = []
    for pid in processes.list_pids():
        stat = processes.read_stat(pid)
        if stat is not None and stat.pgid == pgid:
            members.append(pid)
    return sorted(members)


def terminate_warnings(listener: Listener | None, pid: int, server: Server | None) -> list[str]:
    """Why terminating one holder may not free the port: its master or reloader lives on."""
    if listener is None:
        return []
    holder = next((holder for holder in listener.holders if holder.pid == pid), None)
    if holder is None or server is None or server.pid == pid:
        return []
    if holder.role == "worker":
        return [
            f"pid {pid} is a worker of {server.kind} master {holder.ppid}: the master respawns "
            f"it; stop {server.pid} instead"
        ]
    if holder.role == CHILD:
        return [
            f"pid {pid} is the child of {server.kind} reloader {holder.ppid}, which keeps the "
            f"port and may restart it; stop {server.pid} instead"
        ]
    return []


def _inventory_snapshot() -> Snapshot:
    from ports import inventory

    return inventory.snapshot()


def _inventory_servers(listeners: Iterable[Listener]) -> dict[int, Server | None]:
    from ports import inventory

    return inventory.servers_of(listeners)
