"""Stopping a port's holder: signal it by pidfd, wait, escalate, and say what happened.

No Django and no rights check: reached only through `ports.operations`, which asks the gate
first. A target is a (pid, create_time) pair, so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import select
import signal as signals
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from console.foundation.limits import validate_port
from ports.errors import Refused, StaleTarget
from ports.inventory import processes
from ports.inventory.records import ProcessInfo, Snapshot

SIGNALS = {"TERM": signals.SIGTERM, "KILL": signals.SIGKILL}
# How long a stopped process gets to exit after SIGTERM when the caller does not say: time for
# a web server to finish its requests, short enough for someone waiting at the button.
DEFAULT_GRACE_SECONDS = 5
MAX_GRACE_SECONDS = 60
# How long to wait for SIGKILL to take effect: it cannot be caught, but a process stuck in
# uninterruptible sleep (D state, e.g. on a dead NFS mount) only dies when the kernel lets it.
KILL_WAIT_SECONDS = 5.0
# The inventory rounds create_time to 2 decimals; anything closer than this is the same start.
CREATE_TIME_TOLERANCE = 0.05

SnapshotFn = Callable[[], Snapshot]
ProcessInfoFn = Callable[[int], ProcessInfo | None]
# (pid, signal number, pidfd or None); raises ProcessLookupError / PermissionError as os.kill does.
SignalSender = Callable[[int, int, int | None], None]


@dataclass(frozen=True, slots=True)
class TerminationResult:
    pid: int
    outcome: str  # "terminated" (exited after TERM) | "killed" (after KILL) | "still-running"
    # True when none of the sockets this pid held on the port exist any more. A pre-fork master's
    # workers share its listening socket, so killing the master alone can leave this False.
    released: bool
    signals_sent: list[str]
    elapsed_ms: float
    # Why this may not free the port (a worker its master respawns); see ports.server_stopping.
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The answer of the API and the websocket (DESIGN.md's contract)."""
        return {
            "pid": self.pid,
            "outcome": self.outcome,
            "released": self.released,
            "signals_sent": list(self.signals_sent),
            "elapsed_ms": self.elapsed_ms,
            "warnings": list(self.warnings),
        }


# --- terminate ---------------------------------------------------------------------------------


def terminate(
    port: int,
    pid: int,
    create_time: float,
    signal: str = "TERM",
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
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
    validate_port("port", port)
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {', '.join(SIGNALS)}, got {signal!r}")
    check_arguments(pid, create_time, grace_seconds)

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
        pidfd = open_pidfd(pid)
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


def check_arguments(
    pid: object, create_time: object, grace_seconds: object, *, name: str = "pid"
) -> None:
    """ValueError naming the argument for a target or grace a signal must never be sent with."""
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise ValueError(f"{name} must be an integer, got {pid!r}")
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
    if not processes.same_start(info.create_time, create_time, CREATE_TIME_TOLERANCE):
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


def open_pidfd(pid: int) -> int | None:
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
