"""The check scheduler: one asyncio loop runs every enabled check at its interval.

- Start times are jittered so 2,000 checks with the same interval do not fire together.
- The next run is the previous *scheduled* time plus the interval, so lag never accumulates;
  slots that passed while the loop was starved are counted as missed and skipped.
- A semaphore bounds concurrent probes; each probe carries its own timeout, so a hung one holds
  one slot until then and never the loop.
- Edits are noticed by polling a cheap signature (count and newest `updated_at`) every second.
- Idle, it wakes only for that poll: results are flushed when there are some, and with no check
  due the loop sleeps until one is: each wake-up costs CPU, and an idle console must stay under
  2% of one core.
- State lives in the database (`Check.state` and its streaks), so a restart resumes where it
  was: no repeated "down" alert, and a recovery alert if a down check came back meanwhile.
- Results are written in batches from one database thread, off the event loop. That thread
  gets plain data and hands back plain data: the scheduler's state and counters are written on
  the event loop alone, so they need no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from django import db
from django.conf import settings

from console.foundation.database_thread import DatabaseThread
from console.foundation.waiting import first_of
from health import storage
from health.models import Check
from health.runner import CheckSpec, execute

logger = logging.getLogger("health.scheduler")

Executor = Callable[[CheckSpec], Awaitable[storage.Observation]]
Published = Callable[[list[storage.Observation], list[storage.Transition]], Awaitable[None]]


@dataclass
class SchedulerStats:
    started: int = 0
    completed: int = 0
    missed: int = 0  # scheduled slots skipped because the loop was behind
    overlapped: int = 0  # a run skipped because the previous one of that check still ran
    stored: int = 0
    store_errors: int = 0
    lags_ms: deque = field(default_factory=lambda: deque(maxlen=200_000))


def load_specs() -> dict[int, CheckSpec]:
    return {check.id: CheckSpec.of(check) for check in Check.objects.filter(enabled=True)}


def signature() -> tuple:
    """(number of checks, newest `updated_at`): any create, edit or delete changes it.

    Plain SQL: this runs every second, and building the ORM aggregate each time was most of an
    idle console's health cost.
    """
    connection = db.connections[Check.objects.db]
    quote = connection.ops.quote_name
    table, column = Check._meta.db_table, Check._meta.get_field("updated_at").column
    assert column is not None  # a concrete field always has its column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), MAX({quote(column)}) FROM {quote(table)}")  # noqa: S608
        return tuple(cursor.fetchone())


class Scheduler:
    def __init__(
        self,
        *,
        max_concurrency: int = 256,
        flush_interval: float = 1.0,
        reload_interval: float = 1.0,
        execute: Executor = execute,
        publish: Published | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.max_concurrency = max_concurrency
        self.flush_interval = flush_interval
        self.reload_interval = reload_interval
        self.execute = execute
        self.publish = publish
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not secrecy)
        self.specs: dict[int, CheckSpec] = {}
        self.due: dict[int, float] = {}
        self.heap: list[tuple[float, int]] = []
        self.running: set[int] = set()
        self.tasks: set[asyncio.Task] = set()
        self.pending: list[storage.Observation] = []
        self.stats = SchedulerStats()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._signature: tuple | None = None
        # Polled every second: the connection is kept, and replaced only after a failed call.
        self._db = DatabaseThread("health-db", as_request=False)
        self._wakeup = asyncio.Event()
        self._results = asyncio.Event()  # set when results wait to be flushed

    async def db(self, function, *args):
        """Run ORM work on the scheduler's own database thread, never on the event loop."""
        return await self._db.run(function, *args)

    # -- the set of checks ---------------------------------------------------------------

    def apply_specs(self, specs: dict[int, CheckSpec], *, first: bool = False) -> None:
        now = self.clock()
        for check_id in list(self.specs):
            if check_id not in specs:
                self.specs.pop(check_id)
                self.due.pop(check_id, None)  # its heap entry is now stale and will be skipped
        for check_id, spec in specs.items():
            old = self.specs.get(check_id)
            self.specs[check_id] = spec
            if old is not None and old.interval_s == spec.interval_s:
                continue  # same rhythm: the edit applies from the next run
            # At start-up spread over a whole interval; a new or re-timed check starts soon.
            spread = spec.interval_s if first else min(spec.interval_s, 2.0)
            self._schedule(check_id, now + self.rng.uniform(0, spread))

    def _schedule(self, check_id: int, at: float) -> None:
        self.due[check_id] = at
        heapq.heappush(self.heap, (at, check_id))
        self._wakeup.set()

    async def reload(self, *, first: bool = False) -> bool:
        current = await self.db(signature)
        if current == self._signature and not first:
            return False
        self._signature = current
        self.apply_specs(await self.db(load_specs), first=first)
        return True

    # -- running -------------------------------------------------------------------------

    def launch_due(self) -> None:
        now = self.clock()
        while self.heap and self.heap[0][0] <= now:
            at, check_id = heapq.heappop(self.heap)
            if self.due.get(check_id) != at:
                continue  # removed or rescheduled since this entry was pushed
            spec = self.specs[check_id]
            following = at + spec.interval_s
            if following <= now:
                skipped = int((now - following) // spec.interval_s) + 1
                self.stats.missed += skipped
                following += skipped * spec.interval_s
            self._schedule(check_id, following)
            if check_id in self.running:
                self.stats.overlapped += 1
                continue
            self.running.add(check_id)
            task = asyncio.create_task(self._run_one(spec, at), name=f"check-{check_id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run_one(self, spec: CheckSpec, scheduled: float) -> None:
        try:
            async with self.semaphore:
                self.stats.started += 1
                self.stats.lags_ms.append((self.clock() - scheduled) * 1000)
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    # run_probe has its own timeout; this one also covers a misbehaving executor.
                    async with asyncio.timeout(spec.timeout_s + 2):
                        observation = await self.execute(spec)
                except TimeoutError:
                    observation = storage.Observation(
                        spec.id,
                        _now(),
                        False,
                        spec.timeout_s * 1000,
                        f"timed out after {spec.timeout_s:g}s",
                    )
                finally:
                    self.in_flight -= 1
            self.stats.completed += 1
            self.pending.append(observation)
            self._results.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("check %s failed to run", spec.id)
        finally:
            self.running.discard(spec.id)

    async def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            transitions = await self.db(storage.store, batch)
        except Exception:
            self.stats.store_errors += 1
            logger.exception("storing %d results failed; keeping them for the next try", len(batch))
            # Bounded: if the database is gone for long, old results are dropped, not memory.
            self.pending = (batch + self.pending)[-50_000:]
            self._results.set()  # try again after the next flush interval
            return
        self.stats.stored += len(batch)
        if self.publish is not None:
            try:
                await self.publish(batch, transitions)
            except Exception:
                logger.exception("publishing results failed")

    # -- the loops -----------------------------------------------------------------------

    async def _every(self, stop: asyncio.Event, seconds: float, action) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            if stop.is_set():
                return
            try:
                await action()
            except Exception:
                logger.exception("scheduler housekeeping failed")

    async def _flush_results(self, stop: asyncio.Event) -> None:
        """Flush once results arrive, after `flush_interval` to gather a batch; idle, sleep."""
        while not stop.is_set():
            await first_of(stop, self._results)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_interval)
            if stop.is_set():
                return  # run() flushes what is left
            self._results.clear()
            try:
                await self.flush()
            except Exception:
                logger.exception("scheduler housekeeping failed")

    async def _prune(self) -> None:
        deleted = await self.db(storage.prune)
        if any(deleted.values()):
            logger.info("pruned %s", deleted)

    async def run(self, stop: asyncio.Event) -> None:
        await self.reload(first=True)
        logger.info("scheduling %d check(s)", len(self.specs))
        helpers = [
            asyncio.create_task(self._flush_results(stop)),
            asyncio.create_task(self._every(stop, self.reload_interval, self.reload)),
            asyncio.create_task(self._every(stop, settings.HEALTH_PRUNE_INTERVAL_S, self._prune)),
        ]
        try:
            while not stop.is_set():
                self.launch_due()
                # Until the next check is due, or until one is scheduled (that sets _wakeup).
                delay = max(0.0, self.heap[0][0] - self.clock()) if self.heap else None
                self._wakeup.clear()
                await first_of(stop, self._wakeup, timeout=delay)
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, *helpers, return_exceptions=True)
            await self.flush()
            from health.probes.http import close_clients

            await close_clients()
            await self._db.close()


def _now():
    from django.utils import timezone

    return timezone.now()


async def run(stop: asyncio.Event) -> None:
    """The background service (settings.CONSOLE_SERVICES): scheduler and alert worker."""
    from health import alerts, live

    alerts_enqueued = asyncio.Event()

    async def published(observations, transitions) -> None:
        if transitions:  # storing them enqueued their alerts: deliver now, not at the next poll
            alerts_enqueued.set()
        await live.publish_results(observations, transitions)

    scheduler = Scheduler(max_concurrency=settings.HEALTH_MAX_CONCURRENCY, publish=published)
    await asyncio.gather(scheduler.run(stop), alerts.worker(stop, wake=alerts_enqueued))
