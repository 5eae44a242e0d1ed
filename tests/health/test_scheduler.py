"""The scheduler: no drift, skipped slots, bounded concurrency, hung probes, live edits, restart."""

from __future__ import annotations

import asyncio
import random

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from health import states, storage
from health.models import Alert, AlertChannel, Check, Result
from health.runner import CheckSpec, execute
from health.scheduler import Scheduler


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _spec(check_id: int, interval: int = 10, timeout: float = 1.0, **target) -> CheckSpec:
    return CheckSpec(check_id, f"c{check_id}", "tcp", target, interval, timeout)


async def _instant(spec: CheckSpec) -> storage.Observation:
    return storage.Observation(spec.id, timezone.now(), True, 1.0, "ok")


async def test_it_schedules_from_the_planned_time_so_lag_never_accumulates():
    clock = FakeClock()
    scheduler = Scheduler(execute=_instant, clock=clock, rng=random.Random(1))
    scheduler.apply_specs({1: _spec(1)}, first=True)
    first = scheduler.due[1]
    assert 1000 <= first <= 1010  # jittered within one interval

    clock.now = first + 0.4  # started late
    scheduler.launch_due()
    assert scheduler.due[1] == first + 10  # not first + 10.4
    await asyncio.gather(*scheduler.tasks)
    assert scheduler.stats.lags_ms[0] == pytest.approx(400)

    clock.now = first + 10.2
    scheduler.launch_due()
    assert scheduler.due[1] == first + 20
    await asyncio.gather(*scheduler.tasks)
    assert scheduler.stats.missed == 0 and scheduler.stats.completed == 2


async def test_it_counts_and_skips_slots_missed_while_starved():
    clock = FakeClock()
    scheduler = Scheduler(execute=_instant, clock=clock, rng=random.Random(2))
    scheduler.apply_specs({1: _spec(1)}, first=True)
    first = scheduler.due[1]
    clock.now = first + 35  # the loop was blocked for three more intervals
    scheduler.launch_due()
    await asyncio.gather(*scheduler.tasks)
    assert scheduler.stats.started == 1  # no burst of catch-up runs
    assert scheduler.stats.missed == 3
    assert scheduler.due[1] == first + 40


async def test_it_spreads_start_times_over_the_interval():
    scheduler = Scheduler(execute=_instant, clock=FakeClock(0), rng=random.Random(3))
    scheduler.apply_specs({i: _spec(i, interval=10) for i in range(1, 201)}, first=True)
    seconds = {int(due) for due in scheduler.due.values()}
    assert seconds == set(range(10))  # every second of the interval gets some


async def test_it_bounds_concurrent_probes():
    running = peak = 0

    async def slow(spec: CheckSpec) -> storage.Observation:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return await _instant(spec)

    scheduler = Scheduler(execute=slow, max_concurrency=3, rng=random.Random(4))
    scheduler.apply_specs({i: _spec(i, interval=60) for i in range(1, 21)})
    for check_id in scheduler.due:
        scheduler._schedule(check_id, 0)  # all due now
    scheduler.launch_due()
    await asyncio.gather(*scheduler.tasks)
    assert peak == 3 and scheduler.peak_in_flight == 3
    assert scheduler.stats.completed == 20 and len(scheduler.pending) == 20


async def test_a_hung_or_crashing_probe_never_stalls_the_others(silent_server, echo_server):
    async def sometimes_broken(spec: CheckSpec) -> storage.Observation:
        if spec.id == 3:
            raise RuntimeError("probe bug")
        return await execute(spec)

    hung = CheckSpec(
        1,
        "hung",
        "tcp",
        {"host": "127.0.0.1", "port": silent_server.port, "send": "x", "expect": "never"},
        10,
        0.5,
    )
    fine = CheckSpec(2, "fine", "tcp", {"host": "127.0.0.1", "port": echo_server.port}, 10, 0.5)
    broken = CheckSpec(3, "broken", "tcp", {}, 10, 0.5)
    scheduler = Scheduler(execute=sometimes_broken, max_concurrency=2)
    scheduler.apply_specs({1: hung, 2: fine, 3: broken})
    for check_id in (1, 2, 3):
        scheduler._schedule(check_id, 0)
    scheduler.launch_due()
    await asyncio.sleep(0.2)
    # The healthy check finished while the hung one still waits for its reply.
    assert [o.check_id for o in scheduler.pending] == [2]
    await asyncio.gather(*scheduler.tasks)
    by_id = {o.check_id: o for o in scheduler.pending}
    assert by_id[1].ok is False and "timed out" in by_id[1].detail
    assert 3 not in by_id and not scheduler.running


async def test_it_skips_a_run_while_the_previous_one_still_runs():
    release = asyncio.Event()

    async def blocked(spec: CheckSpec) -> storage.Observation:
        await release.wait()
        return await _instant(spec)

    clock = FakeClock()
    scheduler = Scheduler(execute=blocked, clock=clock)
    scheduler.apply_specs({1: _spec(1, interval=1, timeout=1)})
    clock.now = scheduler.due[1]
    scheduler.launch_due()
    await asyncio.sleep(0)
    clock.now += 1
    scheduler.launch_due()
    assert scheduler.stats.overlapped == 1
    release.set()
    await asyncio.gather(*scheduler.tasks)


def _make_check(**fields) -> Check:
    defaults = {
        "name": "api",
        "type": "tcp",
        "target": {"host": "127.0.0.1", "port": 1},
        "interval_s": 10,
        "timeout_s": 1,
    }
    return Check.objects.create(**{**defaults, **fields})


@pytest.mark.django_db(transaction=True)
async def test_it_applies_edits_without_a_restart():
    check = await sync_to_async(_make_check)()
    scheduler = Scheduler(execute=_instant)
    try:
        await scheduler.reload(first=True)
        assert set(scheduler.specs) == {check.id}
        assert await scheduler.reload() is False  # nothing changed

        check.interval_s = 20
        check.target = {"host": "127.0.0.1", "port": 2}
        await sync_to_async(check.save)()
        assert await scheduler.reload() is True
        assert scheduler.specs[check.id].interval_s == 20
        assert scheduler.specs[check.id].target["port"] == 2

        other = await sync_to_async(_make_check)(name="db")
        await sync_to_async(Check.objects.filter(id=check.id).update)(enabled=False)
        await sync_to_async(Check.objects.filter(id=other.id).update)(updated_at=timezone.now())
        await scheduler.reload()
        assert set(scheduler.specs) == {other.id}
        assert check.id not in scheduler.due
    finally:
        await scheduler._db.close()


@pytest.mark.django_db(transaction=True)
async def test_it_runs_checks_stores_results_and_stops_promptly(http_server):
    def create():
        return Check.objects.create(
            name="web", type="http", target={"url": http_server.url}, interval_s=1, timeout_s=1
        )

    check = await sync_to_async(create)()
    published = []

    async def publish(observations, transitions):
        published.extend(transitions)

    scheduler = Scheduler(execute=execute, publish=publish, flush_interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    # Watch the scheduler, not the database: the test database is an in-memory SQLite whose
    # shared cache locks a table for readers while the scheduler's thread writes it.
    for _ in range(100):
        await asyncio.sleep(0.05)
        if scheduler.stats.stored >= 2:
            break
    stop.set()
    await asyncio.wait_for(task, 3)
    assert await sync_to_async(Result.objects.filter(check_ref=check).count)() >= 2
    await sync_to_async(check.refresh_from_db)()
    assert check.state == states.UP and check.last_outcome == "up"
    assert [(t.from_state, t.to_state) for t in published] == [("pending", "up")]


@pytest.mark.django_db
def test_a_restart_sends_a_recovery_but_never_repeats_the_down_alert(receiver):
    """State lives in the database: a new scheduler continues from it."""
    AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    check = _make_check(state=states.DOWN, fail_streak=5)
    now = timezone.now()

    # Still down after the restart: no new alert.
    storage.store([storage.Observation(check.id, now, False, 1.0, "refused")])
    assert not Alert.objects.exists()

    # It came back while we were away: one recovery alert.
    storage.store([storage.Observation(check.id, now, True, 1.0, "ok")])
    (alert,) = Alert.objects.all()
    assert alert.event == "recovery" and alert.previous_state == states.DOWN
    check.refresh_from_db()
    assert check.state == states.UP
