"""Results, hourly rollups, uptime from rollups, and pruning."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from health import storage
from health.models import Check, Result, Rollup, StateChange

pytestmark = pytest.mark.django_db


def _check(**fields) -> Check:
    defaults = {
        "name": "api",
        "type": "tcp",
        "target": {"host": "127.0.0.1", "port": 1},
        "warn_ms": 100,
        "crit_ms": 500,
        "failures_before_down": 1,
    }
    return Check.objects.create(**{**defaults, **fields})


def test_it_rolls_results_up_per_hour_with_latency_figures():
    check = _check()
    hour = storage.hour_of(timezone.now())
    latencies = [10.0] * 18 + [200.0, 900.0]  # 18 up, one degraded, one too slow (down)
    storage.store(
        [
            storage.Observation(check.id, hour + timedelta(seconds=i), True, ms, "")
            for i, ms in enumerate(latencies)
        ]
    )
    rollup = Rollup.objects.get(check_ref=check, hour=hour)
    assert (rollup.count, rollup.up, rollup.degraded, rollup.down) == (20, 18, 1, 1)
    assert rollup.min_ms == 10 and rollup.max_ms == 900
    assert rollup.mean_ms == pytest.approx(sum(latencies) / 20)
    # p95 of 20 values is the 19th (200 ms), read from a 25%-wide bucket.
    assert 200 <= rollup.p95_ms <= 250
    assert Result.objects.filter(check_ref=check).count() == 20


def test_it_updates_an_existing_rollup_across_batches():
    check = _check()
    at = timezone.now()
    storage.store([storage.Observation(check.id, at, True, 5.0)])
    storage.store([storage.Observation(check.id, at, False, 7.0)])
    rollup = Rollup.objects.get(check_ref=check)
    assert (rollup.count, rollup.up, rollup.down, rollup.max_ms) == (2, 1, 1, 7.0)


def test_it_stores_every_state_change():
    check = _check(failures_before_down=2)
    at = timezone.now()
    outcomes = [True, False, False, True]
    storage.store(
        [
            storage.Observation(check.id, at + timedelta(seconds=i), ok, 1.0, "x")
            for i, ok in enumerate(outcomes)
        ]
    )
    changes = list(StateChange.objects.filter(check_ref=check).order_by("at"))
    assert [(c.from_state, c.to_state) for c in changes] == [
        ("pending", "up"),
        ("up", "down"),
        ("down", "up"),
    ]


def test_it_computes_uptime_windows_from_rollups_in_one_query():
    check, idle = _check(), _check(name="idle")
    now = timezone.now()
    hour = storage.hour_of(now)
    Rollup.objects.create(check_ref=check, hour=hour, count=10, up=9, down=1)
    Rollup.objects.create(check_ref=check, hour=hour - timedelta(days=3), count=10, down=10)
    Rollup.objects.create(check_ref=check, hour=hour - timedelta(days=20), count=20, up=20)
    Rollup.objects.create(check_ref=check, hour=hour - timedelta(days=40), count=5, down=5)
    with CaptureQueriesContext(connection) as queries:
        figures = storage.uptime([check.id, idle.id], now)
    assert len(queries) == 1
    assert figures[check.id] == {"24h": 90.0, "7d": 45.0, "30d": 72.5}
    assert figures[idle.id] == {"24h": None, "7d": None, "30d": None}


def test_it_prunes_raw_results_after_48_hours_and_rollups_after_90_days():
    check = _check()
    now = timezone.now()
    for age in (timedelta(hours=1), timedelta(hours=47), timedelta(hours=49)):
        Result.objects.create(check_ref=check, at=now - age, outcome="up", latency_ms=1)
    for age in (timedelta(days=89), timedelta(days=91)):
        Rollup.objects.create(check_ref=check, hour=storage.hour_of(now - age), count=1, up=1)
    deleted = storage.prune(now)
    assert deleted["results"] == 1 and deleted["rollups"] == 1
    assert Result.objects.count() == 2 and Rollup.objects.count() == 1


def test_it_ignores_results_of_a_check_paused_or_deleted_meanwhile():
    paused = _check(enabled=False, state="paused")
    gone = _check(name="gone")
    gone_id = gone.id
    gone.delete()
    storage.store(
        [
            storage.Observation(paused.id, timezone.now(), False, 1.0),
            storage.Observation(gone_id, timezone.now(), False, 1.0),
        ]
    )
    paused.refresh_from_db()
    assert paused.state == "paused" and not Result.objects.exists()
