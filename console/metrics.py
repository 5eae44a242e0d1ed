"""`GET /api/v1/metrics`: Prometheus text for any token with read, from both apps' gauges."""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Router
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from health.metrics import add_check_gauges
from ports.metrics import add_listener_gauges

router = Router(tags=["metrics"])


@router.get("/metrics", response={200: None})
def metrics(request):
    """Prometheus text format: check state, latency and uptime; listener counts."""
    # A fresh registry per scrape: values come from the database and the inventory, not from
    # process memory, so `serve` and `monitor` processes report the same thing.
    registry = CollectorRegistry()
    add_check_gauges(registry)
    add_listener_gauges(registry)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
