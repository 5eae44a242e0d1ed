"""The public shape of checks and channels, shared by the API, the pages and the event stream."""

from __future__ import annotations

from health.models import Check
from health.secrets import redact_channel_config, redact_target

__all__ = ["check_payload", "last_result", "public_target", "redact_channel_config"]


def public_target(kind: str, target: dict, reveal: bool = False) -> dict:
    """The target as a reader may see it: secrets for admins only (`reveal`)."""
    return dict(target) if reveal else redact_target(kind, target)


def last_result(check: Check) -> dict | None:
    if check.last_checked_at is None:
        return None
    return {
        "at": check.last_checked_at.isoformat(),
        "outcome": check.last_outcome,
        "latency_ms": check.last_latency_ms or 0.0,
        "detail": check.last_detail,
        "answered": check.last_answered,
    }


def check_payload(check: Check, uptime: dict | None = None, reveal: bool = False) -> dict:
    return {
        "id": check.id,
        "name": check.name,
        "service": check.service,
        "type": check.type,
        "target": public_target(check.type, check.target, reveal),
        "interval_s": check.interval_s,
        "timeout_s": check.timeout_s,
        "warn_ms": check.warn_ms,
        "crit_ms": check.crit_ms,
        "failures_before_down": check.failures_before_down,
        "successes_before_up": check.successes_before_up,
        "enabled": check.enabled,
        # Names, sorted; empty: every enabled channel (prefetch "channels" for a list).
        "channels": sorted(channel.name for channel in check.channels.all()),
        "state": check.state,
        "state_since": check.state_since.isoformat(),
        "last_result": last_result(check),
        "uptime": uptime or {"24h": None, "7d": None, "30d": None},
    }
