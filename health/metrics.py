"""Prometheus metrics: check state, latency and uptime; listener counts from the inventory."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from health import storage
from health.models import STATES, Check


def render_metrics() -> tuple[bytes, str]:
    # A fresh registry per scrape: values come from the database, not from process memory, so
    # `serve` and `monitor` processes report the same thing.
    registry = CollectorRegistry()
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
        for name in STATES:
            state.labels(*values, name).set(1 if check.state == name else 0)
        up.labels(*values).set(1 if check.state in {"up", "degraded"} else 0)
        if check.last_latency_ms is not None:
            latency.labels(*values).set(check.last_latency_ms)
        for window, percent in figures[check.id].items():
            if percent is not None:
                uptime.labels(*values, window).set(percent / 100)
    listeners = Gauge(
        "portside_listeners", "Listening sockets", ["proto", "exposure"], registry=registry
    )
    from ports import inventory

    counts: dict[tuple[str, str], int] = {}
    for listener in inventory.snapshot().listeners:
        key = (listener.proto, listener.exposure)
        counts[key] = counts.get(key, 0) + 1
    for (proto, exposure), count in counts.items():
        listeners.labels(proto, exposure).set(count)
    return generate_latest(registry), CONTENT_TYPE_LATEST
