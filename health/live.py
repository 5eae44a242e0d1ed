"""Publishing checks to the Health pages: rows rendered once, sent to every connected page.

Each row goes out with its check's id: a page's consumer passes on only the rows its page
shows (a filtered list has no target for the others), and a check's page re-renders itself
when its check is among them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.template.loader import get_template, render_to_string
from django.urls import reverse

from health import dashboard
from health.models import Check

GROUP = "health.page"
EVENTS_GROUP = "health-events"


class Viewers:
    """Pages connected to this process: with the in-memory layer nobody else can be listening,
    so results are not rendered for nobody."""

    count = 0


def render_rows(check_ids: Iterable[int]) -> dict:
    """The group message for these checks: each one's list row, and the list's summary."""
    checks = list(Check.objects.filter(id__in=list(check_ids)))
    row_template = get_template("health/list.html#check-row")
    checks_url = reverse("health:list")
    rows = [
        [row.check.id, row_template.render({"row": row, "oob": True, "checks_url": checks_url})]
        for row in dashboard.rows_for(checks)
    ]
    summary = render_to_string(
        "health/list.html#check-summary", {"summary": dashboard.summary(), "oob": True}
    )
    return {
        "type": "health.rows",
        "ids": [check.id for check in checks],
        "rows": rows,
        "summary": summary,
    }


def render_detail(user, check_id: int) -> str:
    """A check's page, the parts that change (state, actions, facts, chart, history), as
    out-of-band swaps; empty if the check is gone."""
    check = Check.objects.filter(id=check_id).first()
    if check is None:
        return ""
    context = dashboard.detail_context(user, check) | {"oob": True}
    return render_to_string("health/ws/detail.html", context)


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
    if Viewers.count or _shared_layer():
        ids = {observation.check_id for observation in observations}
    else:
        # Nobody can be watching; state changes still go out (cheap, and a page may connect).
        ids = {transition.check_id for transition in transitions}
    if not ids:
        return
    message = await asyncio.to_thread(_render_closing, sorted(ids))
    await layer.group_send(GROUP, message)


def announce(check_ids: Iterable[int]) -> None:
    """After a change made outside the scheduler (a pause, an edit, a run from a page or the
    API): the pages showing these checks update once the change is committed."""
    ids = sorted(set(check_ids))
    if not ids or not (Viewers.count or _shared_layer()):
        return
    transaction.on_commit(lambda: _announce_now(ids))


def _announce_now(ids: list[int]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(GROUP, render_rows(ids))


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


def _render_closing(check_ids: list[int]) -> dict:
    from django import db

    try:
        return render_rows(check_ids)
    finally:
        db.connection.close()
