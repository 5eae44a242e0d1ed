"""From a stored check to a probe call: the one place that knows both Django and the probes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone

from health.probes import ProbeResult, run_probe
from health.specs import command_checks_allowed
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


def dsn_for_alias(alias: str) -> str:
    config = settings.DATABASES[alias]
    engine = config["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{Path(config['NAME']).resolve()}"
    if engine.endswith("postgresql"):
        user = quote(config.get("USER") or "", safe="")
        password = quote(config.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = config.get("HOST") or "localhost"
        port = f":{config['PORT']}" if config.get("PORT") else ""
        return f"postgresql://{auth}{host}{port}/{quote(str(config['NAME']), safe='')}"
    raise ValueError(f"database alias {alias!r}: engine {engine} is not supported")


def probe_target(spec: CheckSpec) -> dict:
    target = dict(spec.target)
    if spec.type == "query" and not target.get("dsn"):
        target["dsn"] = dsn_for_alias(target.get("database") or "default")
    return target


async def execute(spec: CheckSpec) -> Observation:
    """Run a check's probe once. Never raises; a refused command check is a failed result."""
    at = timezone.now()
    if spec.type == "command" and not command_checks_allowed():
        result = ProbeResult(False, 0.0, "command checks are disabled in LAN mode")
    else:
        try:
            target = probe_target(spec)
        except (KeyError, ValueError) as error:
            result = ProbeResult(False, 0.0, f"configuration: {error}")
        else:
            result = await run_probe(spec.type, target, spec.timeout_s)
    return Observation(spec.id, at, result.ok, result.latency_ms, result.detail)
