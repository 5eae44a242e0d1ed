"""The public shape of checks and channels, shared by the API, the pages and the event stream."""

from __future__ import annotations

from health.models import Check

SECRET_CONFIG_KEYS = {"url", "webhook_url", "routing_key", "headers", "events_url"}
REDACTED = "***"
SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}


def redact_channel_config(config: dict) -> dict:
    return {
        key: (REDACTED if key in SECRET_CONFIG_KEYS else value) for key, value in config.items()
    }


def public_target(kind: str, target: dict) -> dict:
    """The target without its secrets (passwords, auth headers, a DSN's password)."""
    shown = dict(target)
    if shown.get("password"):
        shown["password"] = REDACTED
    if headers := shown.get("headers"):
        shown["headers"] = {
            name: (REDACTED if name.lower() in SECRET_HEADERS else value)
            for name, value in headers.items()
        }
    if kind == "query" and shown.get("dsn"):
        from health.specs import _redact_dsn

        shown["dsn"] = _redact_dsn(shown["dsn"])
    return shown


def last_result(check: Check) -> dict | None:
    if check.last_checked_at is None:
        return None
    return {
        "at": check.last_checked_at.isoformat(),
        "outcome": check.last_outcome,
        "latency_ms": check.last_latency_ms or 0.0,
        "detail": check.last_detail,
    }


def check_payload(check: Check, uptime: dict | None = None) -> dict:
    return {
        "id": check.id,
        "name": check.name,
        "service": check.service,
        "type": check.type,
        "target": public_target(check.type, check.target),
        "interval_s": check.interval_s,
        "timeout_s": check.timeout_s,
        "warn_ms": check.warn_ms,
        "crit_ms": check.crit_ms,
        "failures_before_down": check.failures_before_down,
        "successes_before_up": check.successes_before_up,
        "enabled": check.enabled,
        "state": check.state,
        "state_since": check.state_since.isoformat(),
        "last_result": last_result(check),
        "uptime": uptime or {"24h": None, "7d": None, "30d": None},
    }
