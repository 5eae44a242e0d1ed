"""The sampler: snapshot every 250 ms, diff by listener key, store and publish what changed.

inventory (pure) -> sampler -> channel group "ports" -> consumers -> browser / scripts.
A polling thread takes the snapshots and wakes the event loop only when one changed; the loop
diffs and publishes, and stores on the sampler's own database thread. One failed sample is
logged and retried with back-off; it never ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from console.foundation.database_thread import DatabaseThread
from ports import inventory
from ports.inventory.records import Listener, Snapshot
from ports.listing import listener_payload
from ports.models import PortEvent

logger = logging.getLogger("ports.sampler")

GROUP = "ports"
PRUNE_EVERY_SECONDS = 3600
MAX_BACKOFF_SECONDS = 30.0
PROJECTS_REFRESH_SECONDS = 5.0

Key = tuple[str, str, str, int, int]


@dataclass(frozen=True, slots=True)
class PortChange:
    kind: str  # PortEvent.OPENED | CLOSED | OWNER_CHANGED
    at: float  # epoch seconds of the snapshot that saw it
    listener: Listener  # the new state; for "closed", the last state seen
    previous_pids: tuple[int, ...] = ()

    def as_message(self, project: str | None = None) -> dict:
        """Plain data, so it crosses any channel layer (Redis included)."""
        return {
            "kind": self.kind,
            "at": self.at,
            "listener": listener_payload(self.listener, project),
            "previous_pids": list(self.previous_pids),
        }


def index(snapshot: Snapshot) -> dict[Key, Listener]:
    return {listener.key: listener for listener in snapshot.listeners}


# A holder that appeared less than this long ago is not an owner yet: a fork-per-request server
# forks a child holding the socket for every request, and a worker being respawned is news only
# once it stays. It counts once it is this old, or at once when the socket is new.
SETTLE_SECONDS = 1.0
# Holders that join a socket this soon after it opened are its founders, not new owners: gunicorn
# forks its workers one by one with up to 0.1 s between them, after the master has bound. They
# are told as "joined" (the stored "opened" event is brought up to date), never "owner-changed".
FOUNDING_SECONDS = 2.0
JOINED = "joined"  # a live-only change kind: stored as an update of the socket's "opened" row


def diff(
    before: dict[Key, Listener],
    after: dict[Key, Listener],
    at: float,
    opened_at: dict[Key, float] | None = None,
) -> list[PortChange]:
    """Changes between two snapshots, by stable key: a port number alone identifies nothing.

    `owner-changed` means the set of long-lived holders changed: a holder that left, or one that
    has stayed for SETTLE_SECONDS. `opened_at` (key -> when this run saw it open) makes holders
    that only add to a socket within FOUNDING_SECONDS of its opening a JOINED change.
    """
    opened_at = opened_at or {}
    changes = [
        PortChange(PortEvent.CLOSED, at, listener)
        for key, listener in before.items()
        if key not in after
    ]
    for key, listener in after.items():
        old = before.get(key)
        if old is None:
            changes.append(PortChange(PortEvent.OPENED, at, listener))
        elif old.pids == listener.pids or not listener.pids:
            # A socket that merely became unreadable (pids -> ()) is not an owner change: we
            # just lost sight of it.
            continue
        elif set(old.pids) < set(listener.pids) and at - opened_at.get(key, -1e18) < (
            FOUNDING_SECONDS
        ):
            changes.append(PortChange(JOINED, at, listener, old.pids))
        elif _settled(old, listener, at) != set(old.pids):  # a hand-off, a fork that stayed
            changes.append(PortChange(PortEvent.OWNER_CHANGED, at, listener, old.pids))
    return changes


def _settled(old: Listener, new: Listener, at: float) -> set[int]:
    """The holders of `new` that count: those already reported, and the others once settled."""
    known = set(old.pids)
    return {
        holder.pid
        for holder in new.holders
        if holder.pid in known
        or holder.create_time is None
        or at - holder.create_time >= SETTLE_SECONDS
    } or set(new.pids)  # no holder records (a listener rebuilt from an event): take the pids


def reported(
    before: dict[Key, Listener], after: dict[Key, Listener], changes: list[PortChange]
) -> tuple[dict[Key, Listener], float | None]:
    """The state the next diff starts from, and when a held-back holder settles (epoch s).

    A listener whose new holders were not counted yet stays as it was reported, so those
    holders are new again next time and count once they have settled.
    """
    changed = {change.listener.key for change in changes}
    state = dict(after)
    settles_at: float | None = None
    for key, listener in after.items():
        old = before.get(key)
        if old is None or key in changed or old.pids == listener.pids or not listener.pids:
            continue
        state[key] = old
        for holder in listener.holders:
            if holder.pid not in old.pids and holder.create_time is not None:
                due = holder.create_time + SETTLE_SECONDS
                settles_at = due if settles_at is None else min(settles_at, due)
    return state, settles_at


def event_row(change: PortChange, seen_at_start: bool = False) -> PortEvent:
    listener, process = change.listener, change.listener.process
    return PortEvent(
        at=datetime.fromtimestamp(change.at, tz=UTC),
        kind=change.kind,
        proto=listener.proto,
        family=listener.family,
        address=listener.address,
        port=listener.port,
        inode=listener.inode,
        exposure=listener.exposure,
        uid=listener.uid,
        pid=listener.pid,
        pids=list(listener.pids),
        process_name=process.name if process else "",
        user=(process.user or "") if process else "",
        cmdline=process.cmdline if process else "",
        cwd=(process.cwd or "") if process else "",
        create_time=process.create_time if process else None,
        service=listener.service or "",
        seen_at_start=seen_at_start,
    )


class Sampler:
    def __init__(
        self,
        take_snapshot: Callable[[], Snapshot] = inventory.snapshot,
        interval: float | None = None,
        retention_days: int | None = None,
    ):
        self.take_snapshot = take_snapshot
        self.interval = (
            interval if interval is not None else settings.CONSOLE_SAMPLE_INTERVAL_MS / 1000
        )
        self.retention_days = (
            retention_days if retention_days is not None else settings.CONSOLE_EVENT_RETENTION_DAYS
        )
        self.current: dict[Key, Listener] | None = None
        self._listeners: tuple[Listener, ...] | None = None  # the records `current` indexes
        self.failures = 0
        self.samples = 0
        self._last_prune = float("-inf")  # prune once at start, then hourly
        self._resend = threading.Event()
        # The polling thread and the event loop both write `live.snapshot`, `samples` and
        # `failures`; everything else is the event loop's alone.
        self._shared = threading.Lock()
        self._matcher = None
        self._matcher_at = 0.0
        self._database = DatabaseThread("port-sampler-db")
        self._settles_at: float | None = None  # epoch s when a held-back new holder counts
        self._opened_at: dict[Key, float] = {}  # sockets opened lately, see FOUNDING_SECONDS

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until `stop` is set: a polling thread takes the snapshots, this loop the rest.

        The thread wakes the event loop only when a snapshot differs from the last one it handed
        over. An idle machine is nearly every poll, and hopping to a worker thread and back four
        times a second was a quarter of a percent of a core on its own (docs/benchmarks.md).
        """
        logger.info("port sampler started (every %.0f ms)", self.interval * 1000)
        loop = asyncio.get_running_loop()
        handed: asyncio.Queue[Snapshot | None] = asyncio.Queue()
        halt = threading.Event()
        poller = threading.Thread(
            target=self._poll, args=(loop, handed, halt), name="port-sampler", daemon=True
        )
        # The stop event also ends the wait for the next snapshot.
        stopper = asyncio.ensure_future(stop.wait())
        stopper.add_done_callback(lambda _: handed.put_nowait(None))
        live.running = True
        poller.start()
        try:
            await self._consume(stop, handed)
        finally:
            halt.set()
            stopper.cancel()
            live.running = False
            await asyncio.to_thread(poller.join, 5.0)
            await self.close()
        logger.info("port sampler stopped after %d samples", self.samples)

    def _poll(
        self, loop: asyncio.AbstractEventLoop, handed: asyncio.Queue, halt: threading.Event
    ) -> None:
        """The polling thread: a snapshot every interval, handed over when something changed."""
        next_tick = time.monotonic()
        handed_over = None  # the listeners of the snapshot handed over last
        while not halt.is_set():
            try:
                snapshot = self.take_snapshot()
            except Exception:
                delay = self._back_off("port sample failed")
            else:
                delay = self.interval
                if self._resend.is_set():  # the event loop could not store the last one
                    self._resend.clear()
                    handed_over = None
                if snapshot.listeners is handed_over:
                    self._refresh_if_taken_in(snapshot)
                else:
                    handed_over = snapshot.listeners
                    try:
                        loop.call_soon_threadsafe(handed.put_nowait, snapshot)
                    except RuntimeError:
                        return  # the event loop is closed: the console is shutting down
            # Scheduled, not slept: a slow sample does not push every later one back.
            next_tick = max(next_tick + delay, time.monotonic())
            halt.wait(next_tick - time.monotonic())

    async def _consume(self, stop: asyncio.Event, handed: asyncio.Queue) -> None:
        """Diff, store and publish each snapshot the polling thread hands over."""
        while not stop.is_set():
            force = False
            try:
                # Woken at least when the hourly prune is due or a new holder has settled (see
                # SETTLE_SECONDS); otherwise only by a change.
                snapshot = await asyncio.wait_for(
                    handed.get(), timeout=min(self._until_prune(), self._until_settled())
                )
            except TimeoutError:
                snapshot = live.snapshot if self._settles_at is not None else None
                force = True
            if stop.is_set():
                return
            try:
                if snapshot is not None and force:
                    await self.take_in(snapshot, force=True)
                elif snapshot is not None:
                    await self.take_in(snapshot)
                    with self._shared:
                        self.failures = 0
                await self._prune_if_due()
            except Exception:
                delay = self._back_off("storing port changes failed")
                self._resend.set()  # diffed against the state before it, nothing is lost
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    async def sample_once(self) -> list[PortChange]:
        """One snapshot, taken in a worker thread and taken in here (tests, one-off use; `close`
        the sampler after)."""
        return await self.take_in(await asyncio.to_thread(self.take_snapshot))

    async def take_in(self, snapshot: Snapshot, *, force: bool = False) -> list[PortChange]:
        """Diff a snapshot against the current state, store and publish what changed.

        `force` diffs the very records taken in last again: a holder held back has settled.
        """
        if self.current is not None and snapshot.listeners is self._listeners and not force:
            # The inventory hands back the very same records on an idle poll: nothing to diff.
            self._show(snapshot)
            self._count_sample()
            return []
        after = index(snapshot)
        if self.current is None:
            changes = await self._start_from(after, snapshot.sampled_at)
            self.current, self._settles_at = after, None
        else:
            changes = diff(self.current, after, snapshot.sampled_at, self._opened_at)
            self._remember_openings(changes)
            if changes:
                await self._in_database_thread(_store, changes)
            self.current, self._settles_at = reported(self.current, after, changes)
        self._show(snapshot)
        self._listeners = snapshot.listeners
        if changes:
            live.last_change_at = snapshot.sampled_at
            await publish(changes, await self._project_matcher())
        self._count_sample()  # completed samples: the state above is in place
        return changes

    def _back_off(self, what: str) -> float:
        """Count a failure, log it with its traceback, and return how long to wait."""
        with self._shared:
            self.failures += 1
            failures = self.failures
        delay = min(self.interval * 2**failures, MAX_BACKOFF_SECONDS)
        logger.exception("%s (%d in a row); retrying in %.1fs", what, failures, delay)
        return delay

    def _count_sample(self) -> None:
        with self._shared:
            self.samples += 1

    def _refresh_if_taken_in(self, snapshot: Snapshot) -> None:
        """From the polling thread: the very same records as the snapshot handed over last.

        Once the event loop has taken those in, only the snapshot's time is news.
        """
        with self._shared:
            if live.snapshot is not None and live.snapshot.listeners is snapshot.listeners:
                live.snapshot = snapshot
                self.failures = 0
                self.samples += 1

    def _show(self, snapshot: Snapshot) -> None:
        """From the event loop: the snapshot pages and consumers read from now on.

        One of the very records shown may be older than the one shown: the polling thread
        refreshes the time while a re-sent copy (after a failed store) waits. Time never goes back.
        """
        with self._shared:
            shown = live.snapshot
            if (
                shown is None
                or shown.listeners is not snapshot.listeners
                or shown.sampled_at < snapshot.sampled_at
            ):
                live.snapshot = snapshot

    async def _start_from(self, after: dict[Key, Listener], at: float) -> list[PortChange]:
        await self._in_database_thread(_reconcile_history, after, at)
        return []  # nothing to announce: no client saw the state before

    async def _project_matcher(self):
        """The registry's listener -> project matcher, re-read at most every few seconds."""
        now = time.monotonic()
        if self._matcher is None or now - self._matcher_at > PROJECTS_REFRESH_SECONDS:
            from ports.registry.operations import project_matcher

            self._matcher = await self._in_database_thread(project_matcher)
            self._matcher_at = now
        return self._matcher

    async def _in_database_thread(self, function, *args):
        """Run ORM work on the sampler's own thread (see console.foundation.database_thread)."""
        return await self._database.run(function, *args)

    async def close(self) -> None:
        """Close the database thread's connections and end it (`run` does when it stops)."""
        await self._database.close()

    def _remember_openings(self, changes: list[PortChange]) -> None:
        """Keep when each socket opened while it may still gain founders (FOUNDING_SECONDS)."""
        for change in changes:
            if change.kind == PortEvent.OPENED:
                self._opened_at[change.listener.key] = change.at
            elif change.kind == PortEvent.CLOSED:
                self._opened_at.pop(change.listener.key, None)
        if self._opened_at and changes:
            latest = changes[-1].at
            for key, at in list(self._opened_at.items()):
                if latest - at >= FOUNDING_SECONDS:
                    del self._opened_at[key]

    def _until_settled(self) -> float:
        if self._settles_at is None:
            return float("inf")
        # One interval more, so the polling thread has refreshed the snapshot's time past it.
        return max(0.0, self._settles_at - time.time()) + self.interval

    def _until_prune(self) -> float:
        return max(0.0, self._last_prune + PRUNE_EVERY_SECONDS - time.monotonic())

    async def _prune_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        deleted = await self._in_database_thread(prune_events, self.retention_days)
        if deleted:
            logger.info("pruned %d port events older than %d days", deleted, self.retention_days)


def _store(changes: list[PortChange]) -> None:
    """Store the events; a JOINED change brings its socket's "opened" row up to date instead."""
    PortEvent.objects.bulk_create([event_row(c) for c in changes if c.kind != JOINED])
    for change in changes:
        if change.kind == JOINED:
            listener = change.listener
            PortEvent.objects.filter(
                pk=PortEvent.objects.filter(
                    kind=PortEvent.OPENED,
                    proto=listener.proto,
                    family=listener.family,
                    address=listener.address,
                    port=listener.port,
                    inode=listener.inode,
                )
                .order_by("-at", "-id")
                .values("pk")[:1]
            ).update(pids=list(listener.pids))


def _reconcile_history(after: dict[Key, Listener], at: float) -> None:
    """Reconcile the stored history with what is open now, after a (re)start.

    Listeners the history thinks are open but are gone closed while we were not looking;
    listeners open now with no open record get one, marked as seen at start.
    """
    open_in_history = _open_listeners_in_history()
    rows = []
    for key, event in open_in_history.items():
        if key not in after:
            rows.append(event_row(PortChange(PortEvent.CLOSED, at, _listener_of(event))))
    for key, listener in after.items():
        if key not in open_in_history:
            rows.append(event_row(PortChange(PortEvent.OPENED, at, listener), True))
    PortEvent.objects.bulk_create(rows)


def prune_events(retention_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=retention_days)
    deleted, _ = PortEvent.objects.filter(at__lt=cutoff).delete()
    return deleted


KEY_FIELDS = ("proto", "family", "address", "port", "inode")


def _open_listeners_in_history() -> dict[Key, PortEvent]:
    """The last event of every key whose last event is not a close.

    The database picks each key's last event (its highest id: rows are stored in the order the
    sampler saw them): a month of history on a busy machine is hundreds of thousands of rows,
    and only the few still open are read.
    """
    latest = PortEvent.objects.order_by().values(*KEY_FIELDS).annotate(last_id=Max("id"))
    still_open = PortEvent.objects.filter(id__in=latest.values("last_id")).order_by()
    return {event.key: event for event in still_open.exclude(kind=PortEvent.CLOSED)}


def _listener_of(event: PortEvent) -> Listener:
    return Listener(
        proto=event.proto,
        family=event.family,
        address=event.address,
        port=event.port,
        inode=event.inode,
        uid=event.uid,
        pids=tuple(event.pids),
        process=None,
        service=event.service or None,
        exposure=event.exposure,
    )


async def publish(changes: list[PortChange], project_of=lambda listener: None) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(
            GROUP,
            {
                "type": "ports.changes",
                "changes": [c.as_message(project_of(c.listener)) for c in changes],
            },
        )


class _LiveState:
    """What the sampler of this process last saw; consumers read it instead of re-sampling."""

    snapshot: Snapshot | None = None
    last_change_at: float = 0.0
    running: bool = False


live = _LiveState()


def changed_since(rendered_at: float) -> bool:
    """Did anything change after a page rendered its table? Unknown (no local sampler): yes."""
    if not live.running or live.snapshot is None:
        return True
    return live.last_change_at >= rendered_at


def summary() -> dict:
    """Counts for the page header, from the local sampler's snapshot when there is one."""
    snapshot = live.snapshot
    if snapshot is None:
        return {}
    listeners = snapshot.listeners
    return {
        "total": len(listeners),
        "exposed": sum(1 for listener in listeners if listener.exposure != "loopback"),
    }


def current_snapshot(max_age: float = 2.0) -> Snapshot:
    """The sampler's latest snapshot when fresh (it runs in this process), else a new one."""
    snapshot = live.snapshot
    if snapshot is not None and time.time() - snapshot.sampled_at <= max_age:
        return snapshot
    return inventory.snapshot()


async def run(stop: asyncio.Event) -> None:
    """The background service (settings.CONSOLE_SERVICES)."""
    await Sampler().run(stop)
