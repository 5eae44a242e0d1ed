"""Publishing results to the Health page: rows rendered once, sent to every connected page."""

from __future__ import annotations

import asyncio

from channels.layers import get_channel_layer
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from health import consumers, dashboard
from health.models import Check


def render_rows(check_ids: list[int]) -> str:
    checks = list(Check.objects.filter(id__in=check_ids))
    rows = dashboard.rows_for(checks)
    context = {
        "rows": rows,
        "summary": dashboard.summary(),
        "oob": True,
        "checks_url": reverse("health:list"),
    }
    return render_to_string("health/ws/rows.html", context)


def _shared_layer() -> bool:
    return "InMemory" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]


async def publish_results(observations, transitions) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if transitions:
        # Scripts on /ws/v1/events get every state change as JSON (check.state).
        await layer.group_send(
            EVENTS_GROUP,
            {"type": "health.transitions", "transitions": [_transition(t) for t in transitions]},
        )
    if consumers.local_viewers or _shared_layer():
        ids = {observation.check_id for observation in observations}
    else:
        # Nobody can be watching; state changes still go out (cheap, and a page may connect).
        ids = {transition.check_id for transition in transitions}
    if not ids:
        return
    html = await asyncio.to_thread(_render_closing, sorted(ids))
    await layer.group_send(consumers.GROUP, {"type": "health.rows", "html": html})


EVENTS_GROUP = "health-events"


def _transition(transition) -> dict:
    """Plain data, so it crosses any channel layer."""
    return {
        "at": transition.at.isoformat(),
        "check": {
            "id": transition.check_id,
            "name": transition.name,
            "service": transition.service,
            "from": transition.from_state,
            "state": transition.to_state,
            "detail": transition.detail,
            "latency_ms": transition.latency_ms,
        },
    }


def _render_closing(check_ids: list[int]) -> str:
    from django import db

    try:
        return render_rows(check_ids)
    finally:
        db.connection.close()
