"""A real sampler for the socket tests, running on the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time

from ports import inventory
from ports.sampler import Sampler

FIRST_SAMPLE_DEADLINE_S = 20.0


@contextlib.asynccontextmanager
async def running_sampler():
    """A sampler polling every 50 ms, yielded once it has taken its first sample."""
    stop = asyncio.Event()
    sampler = Sampler(take_snapshot=inventory.Inventory().snapshot, interval=0.05)
    task = asyncio.create_task(sampler.run(stop))
    deadline = time.monotonic() + FIRST_SAMPLE_DEADLINE_S
    while sampler.samples == 0:
        if time.monotonic() > deadline or task.done():
            stop.set()
            raise AssertionError("the sampler took no sample")
        await asyncio.sleep(0.01)
    try:
        yield sampler
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
