"""The sampler: diffing by key, owner changes, stored events, failures, retention."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from ports import inventory
from ports.inventory.records import Listener, ProcessInfo, Snapshot
from ports.models import PortEvent
from ports.sampler import Sampler, diff, index, live, prune_events

pytestmark = pytest.mark.django_db(transaction=True)


def _listener(port=5000, proto="tcp", family="ipv4", address="127.0.0.1", inode=1, pids=(10,)):
    process = (
        ProcessInfo(
            pid=pids[0],
            name="python",
            user="dev",
            cmdline="flask run",
            cwd="/src",
            create_time=1000.0,
        )
        if pids
        else None
    )
    return Listener(
        proto=proto,
        family=family,
        address=address,
        port=port,
        inode=inode,
        uid=1000,
        pids=pids,
        process=process,
        service="Flask",
    )


def _snapshot(*listeners) -> Snapshot:
    return Snapshot(sampled_at=time.time(), complete=True, listeners=tuple(listeners))


def test_it_tells_ipv4_ipv6_tcp_and_udp_apart_on_the_same_port():
    v4 = _listener(inode=1)
    v6 = _listener(family="ipv6", address="::1", inode=2)
    udp = _listener(proto="udp", inode=3)
    before = index(_snapshot(v4))
    changes = diff(before, index(_snapshot(v4, v6, udp)), at=1.0)
    assert sorted((c.kind, c.listener.key) for c in changes) == sorted(
        [("opened", v6.key), ("opened", udp.key)]
    )
    closed = diff(index(_snapshot(v4, v6, udp)), index(_snapshot(v6)), at=2.0)
    assert sorted(c.listener.key for c in closed) == sorted([v4.key, udp.key])
    assert {c.kind for c in closed} == {"closed"}


def test_it_sees_a_new_socket_on_the_same_port_as_close_and_open():
    old, new = _listener(inode=1), _listener(inode=2)
    changes = diff(index(_snapshot(old)), index(_snapshot(new)), at=1.0)
    assert sorted(c.kind for c in changes) == ["closed", "opened"]


def test_it_reports_an_owner_change_with_the_previous_holders():
    before = index(_snapshot(_listener(pids=(10,))))
    (change,) = diff(before, index(_snapshot(_listener(pids=(10, 11)))), at=1.0)
    assert change.kind == "owner-changed"
    assert change.previous_pids == (10,) and change.listener.pids == (10, 11)


def test_it_does_not_call_losing_sight_of_an_owner_a_change():
    before = index(_snapshot(_listener(pids=(10,))))
    assert diff(before, index(_snapshot(_listener(pids=()))), at=1.0) == []


async def test_it_stores_real_opens_and_closes(listening_child):
    sampler = Sampler(take_snapshot=inventory.Inventory().snapshot, interval=0.05)
    await sampler.sample_once()  # the baseline
    child = await asyncio.to_thread(listening_child)
    opened = await sampler.sample_once()
    assert [(c.kind, c.listener.pid) for c in opened if c.listener.port == child.port] == [
        ("opened", child.pid)
    ]
    await asyncio.to_thread(child.stop)
    closed = await sampler.sample_once()
    assert [c.kind for c in closed if c.listener.port == child.port] == ["closed"]
    kinds = [
        k
        async for k in PortEvent.objects.filter(port=child.port)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    ]
    assert kinds == ["opened", "closed"]


async def test_it_reconciles_history_on_start():
    ghost = _listener(port=5999, inode=99)
    await PortEvent.objects.acreate(
        kind="opened",
        proto="tcp",
        family="ipv4",
        address="127.0.0.1",
        port=5999,
        inode=99,
        exposure="loopback",
        uid=1000,
        pid=10,
        pids=[10],
    )
    still_open = _listener(port=6001, inode=7)
    sampler = Sampler(take_snapshot=lambda: _snapshot(still_open), interval=0.05)
    assert await sampler.sample_once() == []  # nothing announced for the baseline
    assert await PortEvent.objects.filter(port=5999, kind="closed").aexists()
    baseline = await PortEvent.objects.aget(port=6001)
    assert baseline.kind == "opened" and baseline.seen_at_start
    # A second start does not record the still-open listener twice.
    await Sampler(take_snapshot=lambda: _snapshot(still_open), interval=0.05).sample_once()
    assert await PortEvent.objects.filter(port=6001).acount() == 1
    assert ghost.key != still_open.key


def _stored(listener: Listener, kind: str, at) -> PortEvent:
    return PortEvent(
        at=at,
        kind=kind,
        proto=listener.proto,
        family=listener.family,
        address=listener.address,
        port=listener.port,
        inode=listener.inode,
        exposure="loopback",
        uid=1000,
        pid=listener.pid,
        pids=list(listener.pids),
    )


async def test_it_reconciles_a_month_of_history_reading_only_what_is_still_open():
    """Many keys, each with a history: only each key's last event decides, and only the rows
    of listeners still open are read back (a month of events is not walked in Python)."""
    from django.db.models.signals import post_init

    start = timezone.now() - timedelta(days=29)
    closed_long_ago = [_listener(port=20000 + n, inode=1000 + n) for n in range(60)]
    reopened = closed_long_ago[:10]  # the same socket again after its close: open in history
    still_open = [_listener(port=21000 + n, inode=2000 + n) for n in range(60)]
    history: list[PortEvent] = []
    for listener in closed_long_ago:
        history += [_stored(listener, kind, start) for kind in ("opened", "owner-changed")]
        history.append(_stored(listener, "closed", start + timedelta(days=1)))
    for listener in reopened:
        history.append(_stored(listener, "opened", start + timedelta(days=2)))
    for listener in still_open:
        history += [_stored(listener, kind, start) for kind in ("opened", "owner-changed")]
    await PortEvent.objects.abulk_create(history)
    open_in_history = reopened + still_open

    brand_new = [_listener(port=22000 + n, inode=3000 + n) for n in range(5)]
    back_unseen = closed_long_ago[20]  # closed in history, open now
    now = still_open[:30] + reopened[:5] + brand_new + [back_unseen]
    built: list[PortEvent] = []

    def count(sender, instance, **kwargs):
        built.append(instance)

    post_init.connect(count, sender=PortEvent, weak=False)
    try:
        sampler = Sampler(take_snapshot=lambda: _snapshot(*now), interval=0.05)
        assert await sampler.sample_once() == []
    finally:
        post_init.disconnect(count, sender=PortEvent)

    new_rows = PortEvent.objects.filter(id__gt=max(event.id for event in history))
    written = {(e.kind, e.port, e.seen_at_start) async for e in new_rows}
    gone = still_open[30:] + reopened[5:]
    assert written == {("closed", listener.port, False) for listener in gone} | {
        ("opened", listener.port, True) for listener in [*brand_new, back_unseen]
    }
    # The keys still open in history, then the rows written: nothing else is built.
    assert len(built) <= len(open_in_history) + len(written)


async def test_it_stores_while_the_shared_database_thread_is_busy():
    """asgiref's one thread for thread-sensitive work (Django's async ORM too) may be held by
    another service or a websocket consumer: the sampler stores on a thread of its own."""
    snapshots = iter([_snapshot(_listener(inode=1)), _snapshot(_listener(inode=2))])
    sampler = Sampler(take_snapshot=lambda: next(snapshots), interval=0.05)
    release = threading.Event()
    shared_thread_busy = asyncio.ensure_future(sync_to_async(release.wait)())
    try:
        await asyncio.wait_for(sampler.sample_once(), timeout=10)  # start-up reconciliation
        changes = await asyncio.wait_for(sampler.sample_once(), timeout=10)
        assert sorted(change.kind for change in changes) == ["closed", "opened"]
    finally:
        release.set()
        await shared_thread_busy
        await sampler.close()
    assert await PortEvent.objects.filter(inode=2, kind="opened").aexists()


async def test_it_survives_a_failing_sample_and_keeps_going():
    calls = {"n": 0}

    def flaky() -> Snapshot:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("netlink hiccup")
        return _snapshot(_listener(inode=calls["n"]))

    sampler = Sampler(take_snapshot=flaky, interval=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(sampler.run(stop))
    for _ in range(200):
        if calls["n"] >= 5:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=2)  # and it stops promptly when asked
    assert calls["n"] >= 5 and sampler.failures == 0


async def test_it_prunes_events_past_retention():
    old = await PortEvent.objects.acreate(
        kind="opened",
        proto="tcp",
        family="ipv4",
        address="127.0.0.1",
        port=7000,
        inode=1,
        exposure="loopback",
        uid=0,
    )
    await PortEvent.objects.filter(pk=old.pk).aupdate(at=timezone.now() - timedelta(days=31))
    await PortEvent.objects.acreate(
        kind="opened",
        proto="tcp",
        family="ipv4",
        address="127.0.0.1",
        port=7001,
        inode=2,
        exposure="loopback",
        uid=0,
    )
    assert await sync_to_async(prune_events)(retention_days=30) == 1
    assert await PortEvent.objects.acount() == 1


async def test_it_skips_the_diff_when_the_inventory_returns_the_same_records():
    listeners = (_listener(inode=1),)
    snapshots = iter(
        [
            Snapshot(sampled_at=time.time(), complete=True, listeners=listeners),
            Snapshot(sampled_at=time.time(), complete=True, listeners=listeners),
            Snapshot(sampled_at=time.time(), complete=True, listeners=(_listener(inode=2),)),
        ]
    )
    sampler = Sampler(take_snapshot=lambda: next(snapshots), interval=0.05)
    await sampler.sample_once()
    assert await sampler.sample_once() == []  # same tuple: no diff, no events
    changes = await sampler.sample_once()
    assert sorted(c.kind for c in changes) == ["closed", "opened"]


async def test_the_shown_snapshot_never_goes_back_in_time():
    """The polling thread refreshes the shown snapshot's time while the event loop works; a
    snapshot of the same records the loop takes in late (re-sent after a failed store) is older
    and must not replace it."""
    listeners = (_listener(inode=1),)
    taken_in, resent, refreshed = (
        Snapshot(sampled_at=at, complete=True, listeners=listeners) for at in (1.0, 2.0, 3.0)
    )
    sampler = Sampler(take_snapshot=lambda: taken_in, interval=0.05)
    try:
        await sampler.take_in(taken_in)
        live.snapshot = refreshed  # what the polling thread does on an idle poll
        assert await sampler.take_in(resent) == []
        assert live.snapshot is refreshed
    finally:
        await sampler.close()


async def _run_for(sampler: Sampler, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sampler.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, timeout=5)


def _idle_sampler(fail_first: bool = False) -> tuple[Sampler, tuple, list[Snapshot]]:
    """A sampler on a machine where nothing changes: the same records every poll.

    Returns it, those records, and the list of snapshots the event loop is handed (the first
    hand-over raises, as a failing store would, when `fail_first`).
    """
    listeners = (_listener(inode=1),)
    sampler = Sampler(
        take_snapshot=lambda: Snapshot(sampled_at=time.time(), complete=True, listeners=listeners),
        interval=0.01,
    )
    handed: list[Snapshot] = []
    take_in = sampler.take_in

    async def recording_take_in(snapshot):
        handed.append(snapshot)
        if fail_first and len(handed) == 1:
            raise RuntimeError("database is locked")
        return await take_in(snapshot)

    sampler.take_in = recording_take_in
    return sampler, listeners, handed


async def test_an_idle_machine_does_not_wake_the_event_loop():
    """Same records every poll: the polling thread keeps them, the event loop takes in one."""
    sampler, listeners, handed = _idle_sampler()
    await _run_for(sampler, 0.5)
    assert len(handed) == 1 and sampler.samples >= 10
    # The polls it kept still refresh the snapshot the pages read.
    assert live.snapshot.listeners is listeners
    assert live.snapshot.sampled_at > handed[0].sampled_at


async def test_a_failed_store_is_retried_with_the_same_records():
    sampler, _listeners, handed = _idle_sampler(fail_first=True)
    await _run_for(sampler, 0.5)
    # Nothing changed on the machine, yet the records came back after the failure.
    assert len(handed) == 2 and sampler.current is not None and sampler.failures == 0
