"""Prometheus gauges of the listeners by protocol and exposure (console.metrics serves them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from ports import inventory


def add_listener_gauges(registry: CollectorRegistry) -> None:
    listeners = Gauge(
        "portside_listeners", "Listening sockets", ["proto", "exposure"], registry=registry
    )
    counts: dict[tuple[str, str], int] = {}
    for listener in inventory.snapshot().listeners:
        key = (listener.proto, listener.exposure)
        counts[key] = counts.get(key, 0) + 1
    for (proto, exposure), count in counts.items():
        listeners.labels(proto, exposure).set(count)
