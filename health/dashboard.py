"""What the Health page shows per check, in two queries however many checks there are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby

from django.utils import timezone

from console.foundation.roles import ADMIN, OPERATOR, has_role
from health import charts, states, storage
from health.models import (
    ADMIN_CHECK_TYPES,
    Alert,
    AlertChannel,
    Check,
    Result,
    Rollup,
    run_failed,
)
from health.specs import describe_target

RECENT_RESULTS = 120
NARROW_RESULTS = 40


@dataclass
class CheckRow:
    check: Check
    target: str
    uptime_24h: float | None
    bar: str
    sparkline: str
    # Pre-formatted here: template filters on 500 rows cost more than the rest of the row.
    latency_text: str = ""
    uptime_text: str = ""


def rows_for(checks: list[Check]) -> list[CheckRow]:
    now_hour = storage.hour_of(timezone.now())
    since = now_hour - timedelta(hours=charts.BAR_HOURS - 1)
    # Per check, one slot per hour of the bar: (count, up, degraded, sum_ms) or None. Tuples,
    # not model instances: 500 checks x 24 hours is 12,000 rows per page view.
    slots: dict[int, list] = {}
    for check_id, hour, count, up, degraded, sum_ms in Rollup.objects.filter(
        check_ref_id__in=[check.id for check in checks], hour__gte=since
    ).values_list("check_ref_id", "hour", "count", "up", "degraded", "sum_ms"):
        index = int((hour - since).total_seconds()) // 3600
        if 0 <= index < charts.BAR_HOURS:
            hours = slots.get(check_id) or slots.setdefault(check_id, [None] * charts.BAR_HOURS)
            hours[index] = (count, up, degraded, sum_ms)
    young = [c.id for c in checks if sum(1 for s in slots.get(c.id, ()) if s) < 2]
    recent = _recent_latencies(young)
    labels = charts.hour_labels(now_hour)
    empty = [None] * charts.BAR_HOURS
    rows = []
    for check in checks:
        hours = slots.get(check.id, empty)
        filled = [slot for slot in hours if slot]
        count = sum(slot[0] for slot in filled)
        answered = sum(slot[1] + slot[2] for slot in filled)
        means = [slot[3] / slot[0] if slot and slot[0] else None for slot in hours]
        uptime_24h = round(100 * answered / count, 2) if count else None
        latency = check.last_latency_ms
        rows.append(
            CheckRow(
                check=check,
                target=describe_target(check.type, check.target),
                uptime_24h=uptime_24h,
                # A failed run's figure is how long it took to fail: not a latency.
                latency_text=(
                    "failed"
                    if run_failed(check.last_answered, check.last_outcome)
                    else f"{latency:.0f} ms"
                    if latency is not None
                    else ""
                ),
                uptime_text=f"{uptime_24h:.2f}%" if uptime_24h is not None else "",
                bar=charts.uptime_bar([slot[:3] if slot else None for slot in hours], labels),
                # Under two hours of history: the last results say more than one hourly mean.
                sparkline=charts.sparkline(recent.get(check.id, means)),
            )
        )
    return rows


def _recent_latencies(check_ids: list[int], points: int = 30) -> dict[int, list[float | None]]:
    """The last `points` latencies of young checks (from the last 15 minutes), oldest first;
    a failed run is a gap (None), not a point."""
    if not check_ids:
        return {}
    found: dict[int, list[float | None]] = {check_id: [] for check_id in check_ids}
    for check_id, latency, outcome, answered in (
        Result.objects.filter(
            check_ref_id__in=check_ids, at__gte=timezone.now() - timedelta(minutes=15)
        )
        .order_by("check_ref_id", "-at")
        .values_list("check_ref_id", "latency_ms", "outcome", "answered")
    ):
        if len(found[check_id]) < points:
            found[check_id].append(None if run_failed(answered, outcome) else latency)
    return {check_id: values[::-1] for check_id, values in found.items()}


def filtered(q: str = "", state: str = ""):
    """The checks the list shows for a search and a state: the page and its socket agree."""
    checks = Check.objects.all()
    if q:
        checks = checks.filter(name__icontains=q) | checks.filter(service__icontains=q)
    if state in states.CheckState.values:
        checks = checks.filter(state=state)
    return checks


def detail_context(user, check: Check) -> dict:
    """What a check's page shows, for the page and for its live updates alike."""
    results = list(check.results.order_by("-at")[:RECENT_RESULTS])[::-1]
    channels = sorted(channel.name for channel in check.channels.all())
    return {
        "nav": "health",
        "check": check,
        "target": describe_target(check.type, check.target),
        "uptime": storage.uptime([check.id])[check.id],
        "chart": charts.latency_chart(results, check.warn_ms, check.crit_ms),
        # A phone gets fewer results in a narrower drawing, so its labels stay readable.
        "chart_narrow": charts.latency_chart(
            results[-NARROW_RESULTS:], check.warn_ms, check.crit_ms, width=420, height=240
        ),
        "bar": rows_for([check])[0].bar,
        "last_failed": run_failed(check.last_answered, check.last_outcome),
        "results": results[::-1][:30],
        "changes": check.state_changes.order_by("-at")[:30],
        "alerts": Alert.objects.filter(check_ref=check).select_related("channel")[:10],
        "channels": channels,
        "any_channel": bool(channels) or AlertChannel.objects.filter(enabled=True).exists(),
        "can_operate": has_role(user, OPERATOR),
        # Checks that run code or SQL are an admin's to run, pause and edit.
        "needs_admin": check.type in ADMIN_CHECK_TYPES and not has_role(user, ADMIN),
    }


def grouped(rows: list[CheckRow]) -> list[tuple[str, list[CheckRow]]]:
    ordered = sorted(rows, key=lambda row: (row.check.service or "~", row.check.name))
    return [
        (service, list(items))
        for service, items in groupby(ordered, key=lambda row: row.check.service)
    ]


def summary() -> dict[str, int]:
    from django.db.models import Count

    counts = dict(Check.objects.values_list("state").annotate(n=Count("id")))
    shown = (states.UP, states.DEGRADED, states.DOWN, states.PENDING, states.PAUSED)
    return {state: counts.get(state, 0) for state in shown}
