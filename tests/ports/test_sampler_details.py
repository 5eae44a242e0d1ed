"""The sampler's small judgements: which holders count yet, what a missed close records, the
page header's counts, and the background service that stops when told."""

from __future__ import annotations

import asyncio
import time

import pytest

from ports import sampler
from ports.inventory.records import Holder, Listener, Snapshot
from ports.models import PortEvent
from tests.conftest import wait_until_async

pytestmark = pytest.mark.django_db(transaction=True)


def _holder(pid: int, create_time: float | None) -> Holder:
    return Holder(pid, create_time, "gunicorn", "gunicorn app:app", 1, "worker")


def _held(*holders: Holder) -> Listener:
    return Listener(
        proto="tcp",
        family="ipv4",
        address="127.0.0.1",
        port=8000,
        inode=5,
        uid=1000,
        pids=tuple(holder.pid for holder in holders),
        holders=holders,
    )


def test_a_holder_counts_at_once_when_known_and_once_settled_when_new():
    old = _held(_holder(10, 100.0))
    new = _held(_holder(10, 100.0), _holder(11, 200.0))
    # pid 11 was born 0.5 s ago: a worker still starting, held back; pid 10 was reported.
    assert sampler._settled(old, new, at=200.5) == {10}
    # Settled exactly at SETTLE_SECONDS of age, and after.
    assert sampler._settled(old, new, at=200.0 + sampler.SETTLE_SECONDS) == {10, 11}
    assert sampler._settled(old, new, at=205.0) == {10, 11}


def test_a_holder_whose_age_cannot_be_read_counts_at_once():
    old = _held(_holder(10, 100.0))
    assert sampler._settled(old, _held(_holder(10, 100.0), _holder(12, None)), at=100.1) == {
        10,
        12,
    }


def test_a_listener_without_holder_records_counts_its_pids():
    rebuilt = Listener("tcp", "ipv4", "127.0.0.1", 8000, 5, 1000, pids=(21, 22))
    assert sampler._settled(_held(), rebuilt, at=time.time()) == {21, 22}


async def test_a_listener_gone_while_the_console_was_down_closes_as_it_was_last_seen():
    await PortEvent.objects.acreate(
        kind="opened",
        proto="tcp",
        family="ipv4",
        address="0.0.0.0",
        port=5998,
        inode=98,
        exposure="all",
        uid=1000,
        pid=10,
        pids=[10, 11],
        service="gunicorn",
    )
    empty = Snapshot(sampled_at=time.time(), complete=True, listeners=())
    await sampler.Sampler(take_snapshot=lambda: empty, interval=0.05).sample_once()
    closed = await PortEvent.objects.aget(port=5998, kind="closed")
    assert (closed.pids, closed.pid, closed.service, closed.exposure) == (
        [10, 11],
        10,
        "gunicorn",
        "all",
    )


def test_the_page_header_counts_what_the_sampler_last_saw(monkeypatch):
    lan = Listener("tcp", "ipv4", "0.0.0.0", 5000, 1, 1000)
    also_lan = Listener("tcp", "ipv6", "::", 5002, 3, 1000)
    loopback = Listener("tcp", "ipv4", "127.0.0.1", 5001, 2, 1000)
    monkeypatch.setattr(sampler.live, "snapshot", None)
    assert sampler.summary() == {}  # no sampler in this process yet: the header shows nothing
    seen = Snapshot(sampled_at=time.time(), complete=True, listeners=(lan, also_lan, loopback))
    monkeypatch.setattr(sampler.live, "snapshot", seen)
    assert sampler.summary() == {"total": 3, "exposed": 2}


async def test_the_background_service_samples_until_it_is_stopped(monkeypatch):
    monkeypatch.setattr(sampler.live, "snapshot", None)
    stop = asyncio.Event()
    service = asyncio.create_task(sampler.run(stop))
    assert await wait_until_async(
        lambda: sampler.live.snapshot is not None or service.done(), timeout=60
    )
    stop.set()
    await asyncio.wait_for(service, timeout=60)
    assert sampler.live.snapshot is not None and service.exception() is None
