"""The sampler's history of real servers: one "opened" carrying every holder, no false owner change.

A gunicorn master binds and then forks its workers one by one; a fork-per-request server forks a
child holding the socket for every request. Neither is an owner change (issue 12, section 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import pytest

from ports import inventory
from ports.models import PortEvent
from ports.sampler import Sampler
from tests.ports.real_servers import running

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="Linux /proc"),
]
DEADLINE_S = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def _sampling():
    stop = asyncio.Event()
    # The console's own interval: the founders' window and the settling are judged at it.
    sampler = Sampler(take_snapshot=inventory.Inventory().snapshot, interval=0.25)
    task = asyncio.create_task(sampler.run(stop))
    while sampler.samples == 0:
        await asyncio.sleep(0.02)
    try:
        yield sampler
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def _events(port: int) -> list[PortEvent]:
    return [event async for event in PortEvent.objects.filter(port=port).order_by("at", "id")]


async def _until(condition, what: str):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("kind", ["gunicorn-w3", "flask-debug", "uvicorn-workers"])
async def test_a_server_start_is_one_opened_event_with_all_its_holders(kind, tmp_path):
    port = _free_port()
    async with _sampling():
        with running(kind, port, tmp_path=tmp_path) as server:
            await asyncio.to_thread(server.wait_listening)
            expected = len({"gunicorn-w3": 4, "flask-debug": 2, "uvicorn-workers": 3}[kind] * "x")

            async def complete():
                events = await _events(port)
                return events if events and len(events[0].pids) == expected else None

            events = await _until(complete, f"an opened event with {expected} holders")
            # A worker that stays past the founders' window would be an owner change: wait
            # beyond it, then nothing more may have been recorded.
            opened_at = events[0].at.timestamp()
            await _until(_after(opened_at + 3.5), "the founders' window to pass")
            events = await _events(port)
            assert [event.kind for event in events] == ["opened"], [
                (event.kind, event.pids) for event in events
            ]
            assert set(events[0].pids) == server.holders()
            assert events[0].pid == server.root_pid  # the master / reloader, oldest first


async def test_a_fork_per_request_server_records_no_owner_change_per_request(tmp_path):
    port = _free_port()
    async with _sampling() as sampler:
        with running("forking", port, tmp_path=tmp_path) as server:
            await asyncio.to_thread(server.wait_listening)
            await _until(lambda: _events_exist(port), "the opened event")
            samples_before = sampler.samples
            for _ in range(30):
                # Each request is a fork holding the listening socket for a moment.
                await asyncio.to_thread(_request, port)
            await _until(
                lambda: _more_samples(sampler, samples_before + 12), "three seconds of samples"
            )
            events = await _events(port)
            assert [event.kind for event in events] == ["opened"], [
                (event.kind, event.pids) for event in events
            ]


def _request(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"ping\n")
        conn.recv(100)


async def _events_exist(port: int) -> bool:
    return await PortEvent.objects.filter(port=port).aexists()


async def _more_samples(sampler: Sampler, at_least: int) -> bool:
    return sampler.samples >= at_least


def _after(epoch: float):
    async def passed() -> bool:
        return time.time() >= epoch

    return passed
