"""Writing results: raw rows, state transitions and hourly rollups in one transaction per batch.

The scheduler, "run now" and the command line all store through `store`, so a state change is
recorded, rolled up and turned into alerts the same way whoever ran the probe.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from health import states
from health.models import Alert, AlertAttempt, Check, Result, Rollup, StateChange

# Latency histogram buckets grow by 25%: p95 read from it is within a bucket's width.
BUCKET_RATIO = 1.25
_LOG_RATIO = math.log(BUCKET_RATIO)
RUNTIME_FIELDS = [
    "state",
    "state_since",
    "fail_streak",
    "success_streak",
    "last_checked_at",
    "last_outcome",
    "last_latency_ms",
    "last_detail",
    "last_answered",
]


@dataclass(frozen=True, slots=True)
class Observation:
    check_id: int
    at: datetime
    ok: bool
    latency_ms: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    check_id: int
    name: str
    service: str
    from_state: str
    to_state: str
    at: datetime
    detail: str
    latency_ms: float | None


def store(observations: list[Observation]) -> list[Transition]:
    if not observations:
        return []
    from health import alerts

    with transaction.atomic():
        ids = {observation.check_id for observation in observations}
        checks = Check.objects.select_for_update().in_bulk(ids)
        results: list[Result] = []
        changes: list[StateChange] = []
        transitions: list[Transition] = []
        touched: dict[int, Check] = {}
        for observation in sorted(observations, key=lambda item: item.at):
            check = checks.get(observation.check_id)
            if check is None or not check.enabled:
                continue  # deleted or paused while the probe ran
            outcome = states.outcome_of(
                observation.ok, observation.latency_ms, check.warn_ms, check.crit_ms
            )
            detail = observation.detail[:300]
            results.append(
                Result(
                    check_ref_id=check.id,
                    at=observation.at,
                    outcome=outcome,
                    latency_ms=round(observation.latency_ms, 2),
                    detail=detail,
                    answered=observation.ok,
                )
            )
            before = states.Tracker(check.state, check.fail_streak, check.success_streak)
            after = states.advance(
                before, outcome, check.failures_before_down, check.successes_before_up
            )
            check.fail_streak, check.success_streak = after.fail_streak, after.success_streak
            check.last_checked_at = observation.at
            check.last_outcome = outcome
            check.last_latency_ms = round(observation.latency_ms, 2)
            check.last_detail = detail
            check.last_answered = observation.ok
            if after.state != before.state:
                changes.append(
                    StateChange(
                        check_ref_id=check.id,
                        at=observation.at,
                        from_state=before.state,
                        to_state=after.state,
                        reason=_reason(observation, outcome, check),
                    )
                )
                transitions.append(
                    Transition(
                        check.id,
                        check.name,
                        check.service,
                        before.state,
                        after.state,
                        observation.at,
                        detail,
                        observation.latency_ms,
                    )
                )
                check.state, check.state_since = after.state, observation.at
                if after.state != states.DOWN:
                    check.last_reminder_at = None
            touched[check.id] = check
        Result.objects.bulk_create(results, batch_size=500)
        # Only runtime fields: a concurrent edit of name or target is never overwritten.
        _update_many(Check, list(touched.values()), [*RUNTIME_FIELDS, "last_reminder_at"])
        StateChange.objects.bulk_create(changes)
        _roll_up(results)
        alerts.enqueue(transitions)
    return transitions


def _reason(observation: Observation, outcome: str, check: Check) -> str:
    """Why the state changed: the result's detail, and the threshold when an answer was slow
    ("HTTP 200" alone would not say why a check turned degraded)."""
    detail = observation.detail
    if observation.ok and outcome in (states.DEGRADED, states.DOWN):
        limit = check.crit_ms if outcome == states.DOWN else check.warn_ms
        slow = f"answered in {observation.latency_ms:.0f} ms, above {limit} ms"
        detail = f"{detail}: {slow}" if detail else slow
    return detail[:300]


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_of(latency_ms: float) -> int:
    return 0 if latency_ms <= 1 else math.ceil(math.log(latency_ms) / _LOG_RATIO)


def p95_from(histogram: dict, count: int, low: float, high: float) -> float:
    if not count:
        return 0.0
    wanted = math.ceil(0.95 * count)
    seen = 0
    for bucket in sorted(histogram, key=int):
        seen += histogram[bucket]
        if seen >= wanted:
            return round(min(max(BUCKET_RATIO ** int(bucket), low), high), 2)
    return high


def _roll_up(results: list[Result]) -> None:
    grouped: dict[tuple[int, datetime], list[Result]] = defaultdict(list)
    for result in results:
        grouped[(result.check_ref_id, hour_of(result.at))].append(result)
    if not grouped:
        return
    check_ids = {key[0] for key in grouped}
    hours = {key[1] for key in grouped}
    existing = {
        (rollup.check_ref_id, rollup.hour): rollup
        for rollup in Rollup.objects.select_for_update().filter(
            check_ref_id__in=check_ids, hour__in=hours
        )
    }
    to_create, to_update = [], []
    for key, items in grouped.items():
        rollup = existing.get(key)
        if rollup is None:
            rollup = Rollup(check_ref_id=key[0], hour=key[1], histogram={})
            to_create.append(rollup)
        else:
            to_update.append(rollup)
        for result in items:
            latency = result.latency_ms
            rollup.min_ms = latency if rollup.count == 0 else min(rollup.min_ms, latency)
            rollup.max_ms = max(rollup.max_ms, latency)
            rollup.count += 1
            rollup.sum_ms += latency
            setattr(rollup, result.outcome, getattr(rollup, result.outcome) + 1)
            bucket = str(bucket_of(latency))
            rollup.histogram[bucket] = rollup.histogram.get(bucket, 0) + 1
        rollup.p95_ms = p95_from(rollup.histogram, rollup.count, rollup.min_ms, rollup.max_ms)
    Rollup.objects.bulk_create(to_create, batch_size=500)
    _update_many(
        Rollup,
        to_update,
        ["count", "up", "degraded", "down", "min_ms", "max_ms", "sum_ms", "p95_ms", "histogram"],
    )


def _update_many(model, objects: list, fields: list[str]) -> None:
    """One prepared UPDATE run for every row (executemany).

    bulk_update builds a CASE expression per field and row; at 200 results a second its
    expression building alone took more CPU than the probes.
    """
    if not objects:
        return
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608 (quoted model identifiers; values are parameters)
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns]
        + [obj.pk]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def uptime(check_ids, now: datetime | None = None) -> dict[int, dict[str, float | None]]:
    """Share of results that answered (up or degraded) per window, from rollups: one query."""
    now = now or timezone.now()
    annotations = {}
    for label, span in WINDOWS.items():
        since = hour_of(now - span) + timedelta(hours=1)
        window = Q(hour__gte=since)
        annotations[f"count_{label}"] = Sum("count", filter=window)
        annotations[f"ok_{label}"] = Sum(F("up") + F("degraded"), filter=window)
    # Each row also has the count_* and ok_* sums named above.
    rows: Iterable[Mapping[str, Any]] = (
        Rollup.objects.filter(
            check_ref_id__in=list(check_ids),
            hour__gte=hour_of(now - WINDOWS["30d"]) + timedelta(hours=1),
        )
        .values("check_ref_id")
        .annotate(**annotations)
    )
    figures: dict[int, dict[str, float | None]] = {
        check_id: dict.fromkeys(WINDOWS) for check_id in check_ids
    }
    for row in rows:
        figures[row["check_ref_id"]] = {
            label: (
                round(100 * (row[f"ok_{label}"] or 0) / row[f"count_{label}"], 3)
                if row[f"count_{label}"]
                else None
            )
            for label in WINDOWS
        }
    return figures


def prune(now: datetime | None = None, chunk: int = 5000) -> dict[str, int]:
    """Delete what is past its retention, in chunks so a big backlog never holds a long lock."""
    now = now or timezone.now()
    plans: list[
        tuple[str, type[Result | Rollup | StateChange | Alert | AlertAttempt], str, datetime]
    ] = [
        ("results", Result, "at", now - timedelta(hours=settings.HEALTH_RESULT_RETENTION_HOURS)),
        ("rollups", Rollup, "hour", now - timedelta(days=settings.HEALTH_ROLLUP_RETENTION_DAYS)),
        (
            "state_changes",
            StateChange,
            "at",
            now - timedelta(days=settings.HEALTH_ROLLUP_RETENTION_DAYS),
        ),
        ("alerts", Alert, "created_at", now - timedelta(days=settings.HEALTH_ALERT_RETENTION_DAYS)),
        (
            "alert_attempts",
            AlertAttempt,
            "at",
            now - timedelta(days=settings.HEALTH_ALERT_RETENTION_DAYS),
        ),
    ]
    deleted: dict[str, int] = {}
    for label, model, field, cutoff in plans:
        total = 0
        while True:
            ids = list(
                model.objects.filter(**{f"{field}__lt": cutoff}).values_list("id", flat=True)[
                    :chunk
                ]
            )
            if not ids:
                break
            total += model.objects.filter(id__in=ids).delete()[0]
        deleted[label] = total
    return deleted
