"""Port actions as a signed-in user performs them: rights, then the action, then the audit entry.

The page, the API and the websocket consumer all call these, so a rule added here holds
everywhere. The actions themselves (signalling, binding) live in `ports.actions`.
"""

from __future__ import annotations

import os

from django.core.exceptions import PermissionDenied

from console import audit
from console.security.roles import ADMIN, OPERATOR, has_role
from ports import actions, inventory


def terminate_for(
    user,
    *,
    port: int,
    pid: int,
    create_time: float,
    signal: str = "TERM",
    grace_seconds: float = 5,
    escalate: bool = False,
    scope: str | None = None,
    request=None,
) -> actions.TerminationResult:
    target = f"port {port} pid {pid}"
    needed = OPERATOR
    holders = inventory.snapshot().on_port(port)
    holder = next((listener for listener in holders if pid in listener.pids), None)
    if holder is not None and holder.uid != os.getuid():
        # Another OS user's process: a decision for an admin, not for any operator.
        needed = ADMIN
    if not has_role(user, needed, scope):
        audit.record(
            "port.terminate",
            request=request,
            user=user,
            target=target,
            outcome="forbidden",
            needed=needed,
        )
        raise PermissionDenied(f"terminating this process needs the {needed} role")
    try:
        result = actions.terminate(
            port, pid, create_time, signal=signal, grace_seconds=grace_seconds, escalate=escalate
        )
    except actions.ActionError as error:
        audit.record(
            "port.terminate",
            request=request,
            user=user,
            target=target,
            outcome=type(error).__name__,
            reason=str(error),
        )
        raise
    audit.record(
        "port.terminate",
        request=request,
        user=user,
        target=target,
        outcome=result.outcome,
        signal=signal,
        escalate=escalate,
        released=result.released,
        process=holder.process.cmdline if holder and holder.process else "",
    )
    return result
