"""Prometheus gauges of the checks: state, latency and uptime (console.metrics serves them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from health import storage
from health.models import Check
from health.states import CheckState


def add_check_gauges(registry: CollectorRegistry) -> None:
    """Each check's state, latency and uptime, from the database."""
    labels = ["check", "service", "type"]
    state = Gauge(
        "portside_check_state",
        "1 for the check's current state",
        [*labels, "state"],
        registry=registry,
    )
    up = Gauge(
        "portside_check_up", "1 when the check answers (up or degraded)", labels, registry=registry
    )
    latency = Gauge(
        "portside_check_latency_ms", "Latency of the last result", labels, registry=registry
    )
    uptime = Gauge(
        "portside_check_uptime_ratio",
        "Share of answered results",
        [*labels, "window"],
        registry=registry,
    )
    checks = list(Check.objects.all())
    figures = storage.uptime([check.id for check in checks])
    for check in checks:
        values = (check.name, check.service, check.type)
        for name in CheckState.values:
            state.labels(*values, name).set(1 if check.state == name else 0)
        up.labels(*values).set(1 if check.state in {CheckState.UP, CheckState.DEGRADED} else 0)
        if check.last_latency_ms is not None:
            latency.labels(*values).set(check.last_latency_ms)
        for window, percent in figures[check.id].items():
            if percent is not None:
                uptime.labels(*values, window).set(percent / 100)
