"""Port actions as a signed-in user performs them: rights, then the action, then the audit entry.

The page, the API and the websocket consumer all call these, so a rule added here holds
everywhere. The mechanics without rights (signalling, binding) live in `ports.stopping` and
`ports.free_ports`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import psutil

from console.foundation import audit, gate
from console.foundation.roles import ADMIN, OPERATOR
from ports import errors, inventory, server_stopping, stopping

if TYPE_CHECKING:
    from django.http import HttpRequest

    from console.foundation.gate import Who


class _HasOutcome(Protocol):
    @property
    def outcome(self) -> str: ...


def terminate_for(
    user: Who,
    *,
    port: int,
    pid: int,
    create_time: float,
    signal: str = "TERM",
    grace_seconds: float = stopping.DEFAULT_GRACE_SECONDS,
    escalate: bool = False,
    scope: str | None = None,
    request: HttpRequest | None = None,
) -> stopping.TerminationResult:
    target = f"port {port} pid {pid}"
    holders = inventory.snapshot().on_port(port)
    holder = next((listener for listener in holders if pid in listener.pids), None)
    # Another OS user's process is a decision for an admin, not for any operator. Judged by the
    # process's owner, not the socket's: a daemon that binds as root and then drops to a user is
    # that user's process, and one that binds as us and then becomes root is not ours.
    needed = role_to_signal(pid)
    actor = gate.authorize(
        user, needed, "port.terminate", target=target, scope=scope, request=request
    )
    server = inventory.servers_of([holder]).get(holder.inode) if holder else None
    warnings = server_stopping.terminate_warnings(holder, pid, server)
    result = _audited(
        "port.terminate",
        actor,
        target,
        request,
        lambda: stopping.terminate(
            port, pid, create_time, signal=signal, grace_seconds=grace_seconds, escalate=escalate
        ),
        lambda result: {
            "signal": signal,
            "escalate": escalate,
            "released": result.released,
            "process": holder.process.cmdline if holder and holder.process else "",
        },
    )
    return replace(result, warnings=warnings)


def stop_for(
    user: Who,
    *,
    port: int,
    server_pid: int,
    server_create_time: float,
    grace_seconds: float = stopping.DEFAULT_GRACE_SECONDS,
    escalate: bool = False,
    dry_run: bool = False,
    scope: str | None = None,
    request: HttpRequest | None = None,
) -> server_stopping.StopResult:
    """Stop a port's whole server (or plan it, with `dry_run`): an operator for a server all of
    whose processes are the console user's, an admin for anyone else's."""
    target = f"port {port} server {server_pid}"
    servers = inventory.servers_of(inventory.snapshot().on_port(port))
    server = next((s for s in servers.values() if s is not None and s.pid == server_pid), None)
    pids = server.pids if server is not None else (server_pid,)
    needed = ADMIN if any(role_to_signal(pid) == ADMIN for pid in pids) else OPERATOR
    actor = gate.authorize(user, needed, "port.stop", target=target, scope=scope, request=request)
    return _audited(
        "port.stop",
        actor,
        target,
        request,
        lambda: server_stopping.stop_server(
            port,
            server_pid,
            server_create_time,
            grace_seconds=grace_seconds,
            escalate=escalate,
            dry_run=dry_run,
        ),
        lambda result: {
            "escalate": escalate,
            "released": result.released,
            "pids": [step.pid for step in result.plan],
            "process": server.cmdline if server is not None else "",
        },
    )


def _audited[Outcome: _HasOutcome](
    action: str,
    actor: gate.Actor,
    target: str,
    request: HttpRequest | None,
    run: Callable[[], Outcome],
    details: Callable[[Outcome], dict[str, Any]],
) -> Outcome:
    """Run an action the gate allowed and audit what came of it: its outcome, or its refusal."""
    try:
        result = run()
    except errors.ActionError as error:
        audit.record(
            action,
            request=request,
            user=actor.user,
            target=target,
            outcome=type(error).__name__,
            reason=str(error),
        )
        raise
    audit.record(
        action,
        request=request,
        user=actor.user,
        target=target,
        outcome=result.outcome,
        **details(result),
    )
    return result


def role_to_signal(pid: int) -> str:
    """Operator for a process all of whose uids (real, effective, saved) are the console's own;
    admin for anyone else's, and for one whose owner cannot be read (fail closed). A pid that no
    longer exists needs only operator: the action then answers 409, nothing is signalled."""
    try:
        uids = psutil.Process(pid).uids()
    except psutil.NoSuchProcess:
        return OPERATOR
    except (psutil.Error, ValueError):
        return ADMIN
    return OPERATOR if set(uids) == {os.getuid()} else ADMIN
