"""From a stored check to a probe call: the one place that knows both Django and the probes."""

from __future__ import annotations

from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.utils import timezone

from health import secrets
from health.outbound import current_policy
from health.probes import ProbeResult, run_probe
from health.specs import COMMAND_CHECKS_OFF, command_checks_allowed, own_database_refusal
from health.storage import Observation


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """What the scheduler needs of a check, detached from the ORM (safe to use across threads)."""

    id: int
    name: str
    type: str
    target: dict
    interval_s: int
    timeout_s: float
    warn_ms: int | None = None
    crit_ms: int | None = None

    @classmethod
    def of(cls, check) -> CheckSpec:
        return cls(
            check.id,
            check.name,
            check.type,
            dict(check.target),
            check.interval_s,
            check.timeout_s,
            check.warn_ms,
            check.crit_ms,
        )


def probe_target(spec: CheckSpec) -> dict:
    """The target a probe gets; ValueError when the stored target may not run any more."""
    # Placeholders are stored; their values exist only here, for this one run.
    target = secrets.resolved_fields(spec.target, secrets.CHECK_SECRETS.get(spec.type, ()))
    if spec.type == "query":
        # Checks stored before DSNs were required name a Django alias: that read the console's
        # own tables, so such a check now fails with the fix rather than running.
        if not target.get("dsn"):
            raise ValueError("a query check needs a dsn (postgresql://, mysql:// or sqlite:////)")
        if reason := own_database_refusal(target["dsn"]):
            raise ValueError(reason)
    return target


async def execute(spec: CheckSpec) -> Observation:
    """Run a check's probe once. Never raises; a refused command check is a failed result."""
    at = timezone.now()
    if spec.type == "command" and not await sync_to_async(command_checks_allowed)():
        result = ProbeResult(False, 0.0, COMMAND_CHECKS_OFF)
    else:
        try:
            target = probe_target(spec)
        except (KeyError, ValueError) as error:
            result = ProbeResult(False, 0.0, f"configuration: {error}")
        else:
            # Where it may connect: this machine, and the networks an admin allowed.
            policy = await current_policy()
            result = await run_probe(spec.type, target, spec.timeout_s, policy=policy)
    return Observation(spec.id, at, result.ok, result.latency_ms, result.detail)
