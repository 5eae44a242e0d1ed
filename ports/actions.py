"""The actions that change the machine: terminate a port's holder, find free ports.

This is the one home of each action: views, the JSON API and websocket consumers all call these
functions. No Django imports, so a plain script can use them too; failures are `ActionError`
subclasses that carry the HTTP status the API answers with.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import math
import operator
import os
import select
import signal as signals
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import psutil

from ports.records import ProcessInfo, Snapshot

SIGNALS = {"TERM": signals.SIGTERM, "KILL": signals.SIGKILL}
MAX_GRACE_SECONDS = 60
# How long to wait for SIGKILL to take effect: it cannot be caught, but a process stuck in
# uninterruptible sleep (D state, e.g. on a dead NFS mount) only dies when the kernel lets it.
KILL_WAIT_SECONDS = 5.0
# The inventory rounds create_time to 2 decimals; anything closer than this is the same start.
CREATE_TIME_TOLERANCE = 0.05
FIRST_UNPRIVILEGED_PORT = 1024
MAX_PORT = 65535
MAX_FREE_PORTS = 100

SnapshotFn = Callable[[], Snapshot]
ProcessInfoFn = Callable[[int], ProcessInfo | None]
# (pid, signal number, pidfd or None); raises ProcessLookupError / PermissionError as os.kill does.
SignalSender = Callable[[int, int, int | None], None]


class ActionError(Exception):
    """An action could not be carried out; `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StaleTarget(ActionError):
    """That pid with that create_time no longer holds the port: the page was out of date."""

    status = 409


class Refused(ActionError):
    """A protected process, or the kernel said we may not signal it."""

    status = 403


class NoFreePort(ActionError):
    status = 409


@dataclass(frozen=True, slots=True)
class TerminationResult:
    pid: int
    outcome: str  # "terminated" (exited after TERM) | "killed" (after KILL) | "still-running"
    # True when none of the sockets this pid held on the port exist any more. A pre-fork master's
    # workers share its listening socket, so killing the master alone can leave this False.
    released: bool
    signals_sent: list[str]
    elapsed_ms: float


# --- terminate ---------------------------------------------------------------------------------


def terminate(
    port: int,
    pid: int,
    create_time: float,
    signal: str = "TERM",
    grace_seconds: float = 5,
    escalate: bool = False,
    *,
    snapshot_fn: SnapshotFn | None = None,
    process_info_fn: ProcessInfoFn | None = None,
    send_signal: SignalSender | None = None,
) -> TerminationResult:
    """Signal the process `pid` (started at `create_time`) that listens on `port`.

    Sends SIGTERM (or SIGKILL when `signal="KILL"`), waits up to `grace_seconds` for it to exit
    and, when `escalate` is set, follows up with SIGKILL. The target is identified by pid *and*
    create_time so a page that is out of date can never hit a process that reused the pid.

    Raises ValueError for bad arguments, Refused (403) for protected processes or missing rights,
    StaleTarget (409) when that process no longer holds the port.
    """
    started = time.monotonic()
    _validate_port("port", port)
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise ValueError(f"pid must be an integer, got {pid!r}")
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {', '.join(SIGNALS)}, got {signal!r}")
    if (
        isinstance(grace_seconds, bool)
        or not isinstance(grace_seconds, int | float)
        or not 0 <= grace_seconds <= MAX_GRACE_SECONDS
    ):
        raise ValueError(
            f"grace_seconds must be between 0 and {MAX_GRACE_SECONDS}, got {grace_seconds!r}"
        )
    if (
        isinstance(create_time, bool)
        or not isinstance(create_time, int | float)
        or not math.isfinite(create_time)
    ):
        raise ValueError(f"create_time must be seconds since the epoch, got {create_time!r}")

    # Before anything else touches the process: pid 0 and -1 would signal whole process groups,
    # and the console must never take itself or its supervisor down.
    _refuse_protected(pid)

    snapshot_fn = snapshot_fn or _inventory_snapshot
    process_info_fn = process_info_fn or _inventory_process_info
    send = send_signal or _send

    snapshot = snapshot_fn()
    held = _sockets_held(snapshot, port, pid)
    if not held:
        raise StaleTarget(
            f"pid {pid} no longer holds port {port} ({_describe_holders(snapshot, port)}); "
            "refresh and try again"
        )
    info = _verified_info(process_info_fn, pid, create_time)

    try:
        pidfd = _open_pidfd(pid)
    except ProcessLookupError:
        raise StaleTarget(f"pid {pid} exited before it could be signalled") from None
    try:
        proc = None
        if pidfd is None:
            # No pidfd (not Linux): psutil remembers the process's start time and lets us ask
            # later whether this pid is still the same process.
            try:
                proc = psutil.Process(pid)
            except psutil.NoSuchProcess:
                raise StaleTarget(f"pid {pid} exited before it could be signalled") from None
        # Checked again *after* pinning: the process was the target before and is the target now,
        # so the pidfd (or psutil handle) taken in between refers to it and not to a reused pid.
        info = _verified_info(process_info_fn, pid, create_time)

        sent: list[str] = []
        try:
            _send_checked(send, pid, SIGNALS[signal], pidfd, proc)
        except ProcessLookupError:
            raise StaleTarget(f"pid {pid} exited before it could be signalled") from None
        except PermissionError:
            raise Refused(_not_permitted_message(pid, info)) from None
        sent.append(signal)
        # SIGKILL cannot be caught, so waiting for it costs nothing unless the process is stuck.
        wait = grace_seconds if signal == "TERM" else max(grace_seconds, KILL_WAIT_SECONDS)
        exited = _wait_for_exit(pidfd, proc, wait)

        if not exited and escalate and signal != "KILL":
            try:
                _send_checked(send, pid, signals.SIGKILL, pidfd, proc)
            except ProcessLookupError:
                exited = True  # it finished exiting between the wait and the KILL
            except PermissionError:
                raise Refused(_not_permitted_message(pid, info)) from None
            else:
                sent.append("KILL")
                exited = _wait_for_exit(pidfd, proc, KILL_WAIT_SECONDS)
    finally:
        if pidfd is not None:
            os.close(pidfd)

    if exited:
        outcome = "killed" if sent[-1] == "KILL" else "terminated"
        _reap_if_our_child(pid)
    else:
        outcome = "still-running"
    remaining = {listener.key for listener in snapshot_fn().on_port(port)}
    return TerminationResult(
        pid=pid,
        outcome=outcome,
        released=not (held & remaining),
        signals_sent=sent,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


def protected_pids() -> set[int]:
    """pid 0 and 1, this process and each of its ancestors (the server, its supervisor, a shell)."""
    protected = {0, 1, os.getpid()}
    pid = os.getpid()
    while pid > 1:
        try:
            pid = psutil.Process(pid).ppid()
        except psutil.Error:
            break
        if pid in protected:
            break
        protected.add(pid)
    return protected


def _refuse_protected(pid: int) -> None:
    if pid <= 1:
        raise Refused(f"pid {pid} is protected: it would signal the init process or a whole group")
    if pid == os.getpid():
        raise Refused(f"pid {pid} is the console itself")
    if pid in protected_pids():
        raise Refused(f"pid {pid} is protected: the console runs under it")


def _sockets_held(snapshot: Snapshot, port: int, pid: int) -> set[tuple[str, str, str, int, int]]:
    return {listener.key for listener in snapshot.on_port(port) if pid in listener.pids}


def _describe_holders(snapshot: Snapshot, port: int) -> str:
    holders: list[str] = []
    for listener in snapshot.on_port(port):
        # No pids: another user's socket while the console is not root; sock_diag gives the uid.
        names = [f"pid {pid}" for pid in listener.pids] or [f"a process of uid {listener.uid}"]
        holders.extend(name for name in names if name not in holders)
    return f"it is now held by {', '.join(holders)}" if holders else "it is free now"


def _verified_info(process_info_fn: ProcessInfoFn, pid: int, create_time: float) -> ProcessInfo:
    info = process_info_fn(pid)
    if info is None:
        raise StaleTarget(f"pid {pid} has exited; refresh and try again")
    if abs(info.create_time - create_time) > CREATE_TIME_TOLERANCE:
        raise StaleTarget(
            f"pid {pid} is now a different process (started at {info.create_time:.2f}, "
            f"expected {create_time:.2f}); refresh and try again"
        )
    return info


def _not_permitted_message(pid: int, info: ProcessInfo | None) -> str:
    owner = f"user {info.user}" if info is not None and info.user else None
    if owner is None:
        try:
            owner = f"uid {psutil.Process(pid).uids().real}"
        except psutil.Error:
            owner = "another user"
    return (
        f"not permitted to signal pid {pid} (owned by {owner}); "
        "run the console as that user or ask an admin"
    )


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None where the platform has none (then we fall back to os.kill)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return pidfd_open(pid)
    except OSError as exc:
        # ENOSYS: kernel older than 5.3; EPERM: a seccomp profile that forbids the call.
        if exc.errno in (errno.ENOSYS, errno.EPERM):
            return None
        raise


def _send(pid: int, signum: int, pidfd: int | None) -> None:
    """Deliver a signal; through the pidfd when there is one, so it cannot reach a reused pid."""
    if pidfd is not None:
        signals.pidfd_send_signal(pidfd, signum)
    else:
        os.kill(pid, signum)


def _send_checked(
    send: SignalSender, pid: int, signum: int, pidfd: int | None, proc: psutil.Process | None
) -> None:
    # Without a pidfd, narrow the reuse race: psutil compares the pid's start time with the one
    # it saw when the handle was made.
    if proc is not None and not proc.is_running():
        raise ProcessLookupError(pid)
    send(pid, signum, pidfd)


def _wait_for_exit(pidfd: int | None, proc: psutil.Process | None, timeout: float) -> bool:
    """True once the process has exited (a zombie counts: its sockets are already closed)."""
    if pidfd is not None:
        # A pidfd turns readable when the process exits, zombie or reaped.
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(math.ceil(timeout * 1000)))
    assert proc is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(0.05, remaining))


def _reap_if_our_child(pid: int) -> None:
    # A child of the console stays a zombie until we wait for it. Anyone else's zombie is its
    # parent's to reap, and waitpid refuses it anyway (ChildProcessError).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _inventory_snapshot() -> Snapshot:
    # Imported on first use: the refusals and find_free_port need no inventory engine or caches.
    from ports import inventory

    return inventory.snapshot()


def _inventory_process_info(pid: int) -> ProcessInfo | None:
    from ports import inventory

    return inventory.process_info(pid)


# --- find_free_port ----------------------------------------------------------------------------


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
    _validate_port("near", near)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_FREE_PORTS:
        raise ValueError(f"count must be an integer between 1 and {MAX_FREE_PORTS}, got {count!r}")
    family, address = _host_address(host)
    if _bind_probe(family, address, 0, None) in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        raise ValueError(f"{host} is not an address of this machine")
    skip = {operator.index(port) for port in exclude}
    start = near if allow_privileged else max(near, FIRST_UNPRIVILEGED_PORT)
    wildcards = _wildcard_probes()

    found: list[int] = []
    for port in range(start, MAX_PORT + 1):
        if port in skip:
            continue
        if _bindable(port, family, address, wildcards):
            found.append(port)
            if len(found) == count:
                return found
    raise NoFreePort(
        f"no free port between {start} and {MAX_PORT} on {host}"
        + (f" (found {len(found)} of {count})" if found else "")
    )


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """One port, judged as find_free_port judges every port it offers."""
    _validate_port("port", port)
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


def _validate_port(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PORT:
        raise ValueError(f"{name} must be an integer between 1 and {MAX_PORT}, got {value!r}")


def _host_address(host: str) -> tuple[socket.AddressFamily, str]:
    if isinstance(host, str) and host.lower() == "localhost":
        return socket.AF_INET, "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be an IP address or 'localhost', got {host!r}") from None
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    return family, str(ip)


def _wildcard_probes() -> list[tuple[socket.AddressFamily, str, int | None]]:
    """Binds that, together, collide with any TCP socket on a port: [::] dual-stack if possible."""
    v4 = (socket.AF_INET, "0.0.0.0", None)
    if socket.has_ipv6:
        # Dual-stack first; systems without it (OpenBSD) need a v4 and a v6-only probe.
        for v6only, probes in (
            (0, [(socket.AF_INET6, "::", 0)]),
            (1, [v4, (socket.AF_INET6, "::", 1)]),
        ):
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
