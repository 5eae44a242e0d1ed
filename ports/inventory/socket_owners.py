"""Which processes hold a socket: an incremental socket-inode -> pid map built from /proc/PID/fd.

Reading every fd link of every process is what makes `ss -p` and `lsof` slow (tens of thousands of
readlinks). Between two polls almost nothing changes, so this keeps the map and only re-reads:

- processes that appeared since the last poll;
- owners of listening sockets whose open-fd count changed (a close, or a socket handed on);
- for a listener with no known owner: recent owners, then processes whose fd count changed or
  whose pid was reused, then everything (at most every `fallback_scan_every` seconds);
- every process once per `full_rescan_every` seconds, spread across polls, for changes no
  counter shows (an fd received over SCM_RIGHTS while another was closed); a process none of
  whose threads has run since it was read is skipped, as its fd table cannot have changed.

Inodes that even a full scan cannot resolve (another user's process when not root, a process in
another pid namespace) are remembered so they cost nothing on later polls.

Per poll, an owner that did not change costs one `stat` of /proc/PID/fd: its size is the fd count
and its inode number is new for every process behind that pid (procfs makes the inode when the
process's directory is first looked up and drops it when the process exits), so a reused pid shows
at once. /proc/PID/stat (CPU ticks, rss, start time) is re-read at most every `usage_max_age`
seconds, and at the next poll after a process's first read so that its CPU share has a baseline
at once; see `resolve`.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Collection, Iterable
from collections.abc import Set as AbstractSet
from typing import Final, NamedTuple

from ports.inventory import processes
from ports.inventory.processes import Activity, ProcStat, read_stat

# `stat("/proc/PID/fd").st_size` is the number of open fds since Linux 6.2; before that it is 0.
_SOCKET_PREFIX = "socket:["
_UNREADABLE = (-1, -1)

# How old an owner's /proc/PID/stat may be before it is read again. The sampler polls every 250 ms;
# reading the stat of every owner on every poll was a third of an idle poll's cost. CPU share and
# rss are shown as whole numbers on a page refreshed by the sampler, so a figure at most a second
# old is as good as a current one, and the start time (pid reuse) is checked on every poll anyway
# through the fd directory's inode number. A changed fd count re-reads it at once.
USAGE_MAX_AGE = 1.0

FdSignature = tuple[int, int]  # (inode of /proc/PID/fd, open fds): changes with either


class _NotRead(enum.Enum):
    """_scan's `activity` when the caller has not read it (None means it was unreadable)."""

    NOT_READ = enum.auto()


_NOT_READ: Final = _NotRead.NOT_READ


class _KeptStat(NamedTuple):
    """An owner's last /proc/PID/stat, as `_check_owners` decides whether to read it again."""

    stat: ProcStat
    read_at: float
    reads: int  # how many reads of this process so far, capped at 2 (a CPU share needs two)


class _HoldersView(NamedTuple):
    """What `_holders_of` found for one set of listeners, valid while `generation` is current."""

    generation: int
    listening: AbstractSet[int]
    owners: dict[int, list[int]]  # inode -> holder pids
    orphans: set[int]  # listening inodes without a known holder
    owner_pids: set[int]


# Listing /proc is skipped while /proc/loadavg says no task was created or reaped since the last
# listing; it is listed at least this often all the same.
LIST_PIDS_AT_LEAST_EVERY = 5.0


def _kernel_counts_fds() -> bool:
    try:
        major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    if (major, minor) < (6, 2):
        return False
    try:
        return os.stat("/proc/self/fd").st_size > 0
    except OSError:
        return False


class SocketOwners:
    """Maps socket inodes to the pids holding them, cached across calls.

    Not thread-safe: the caller (Inventory) serialises snapshots.
    """

    def __init__(
        self,
        *,
        full_rescan_every: float = 30.0,
        fallback_scan_every: float = 5.0,
        recent_owner_for: float = 30.0,
        usage_max_age: float = USAGE_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.full_rescan_every = full_rescan_every
        self.usage_max_age = usage_max_age
        self.fallback_scan_every = fallback_scan_every
        self.recent_owner_for = recent_owner_for
        self._clock = clock
        self._counts_fds = _kernel_counts_fds()
        self._can_skip_listing = processes.same_pid_namespace()
        self._tasks_seen: tuple[bytes, bytes] | None = None  # (threads, last pid) at the listing
        self._last_listing = float("-inf")
        self._sockets_of: dict[int, dict[int, int]] = {}  # pid -> {socket inode: fd}
        self._holders: dict[int, dict[int, int]] = {}  # socket inode -> {pid: fd}
        self._fd_count: dict[int, FdSignature] = {}  # pid -> fd dir signature when last scanned
        self._start: dict[int, int] = {}  # pid -> start ticks when last scanned (pid reuse)
        self._stats: dict[int, _KeptStat] = {}  # pid -> its last /proc/PID/stat
        self._rescan_due: dict[int, float] = {}  # pid -> when the rolling rescan reads it again
        # pid -> what its threads had run when scanned (None: unreadable, so never "unchanged")
        self._activity: dict[int, Activity | None] = {}
        self._recent_owners: dict[int, float] = {}  # pid -> when it last held a listener
        self._unresolvable: set[int] = set()  # listening inodes no full scan could place
        self._last_full_scan = float("-inf")
        self._generation = 0  # bumped whenever the holders map changes
        self._holders_cache: _HoldersView | None = None
        # The listening inodes of the previous call: a new one gets all its holders found at once.
        self._listening_seen: AbstractSet[int] = frozenset()
        # scans by cause: new pids, the rolling rescan, owners whose fd table or pid changed, and
        # searches for a listener's unknown owner (full scans are counted apart).
        self.counters = {
            "scans": 0,
            "full_scans": 0,
            "readlinks": 0,
            "stat_reads": 0,
            "new_pid_scans": 0,
            "rolling_scans": 0,
            "rolling_skips": 0,
            "owner_scans": 0,
            "search_scans": 0,
            "new_socket_scans": 0,
        }

    # -- the per-poll entry point -----------------------------------------------------------------

    def resolve(
        self, listening: Collection[int]
    ) -> tuple[dict[int, list[int]], dict[int, ProcStat], AbstractSet[int]]:
        """Owners of the given socket inodes.

        Returns (inode -> pids, pid -> /proc/PID/stat of every owner, unresolved inodes).
        Owners whose stat could not be read (they just exited) are left out. An owner's stat is
        the same object as on the previous call until it is read again (at most every
        `usage_max_age` seconds, see USAGE_MAX_AGE), so callers can tell a new sample by identity.
        """
        now = self._clock()
        first_poll = not self._fd_count
        # Listing /proc (a few hundred entries) was a sixth of an idle poll. The task count and
        # the last pid handed out, both in /proc/loadavg, move whenever a process or thread is
        # created or reaped: while neither moved, the pids in /proc are the ones listed last.
        tasks = processes.task_counters() if self._can_skip_listing else None
        if (
            first_poll
            or tasks is None
            or tasks != self._tasks_seen
            or now - self._last_listing >= LIST_PIDS_AT_LEAST_EVERY
        ):
            self._tasks_seen = tasks  # read before listing: a fork after it shows next poll
            self._last_listing = now
            pids_now = processes.list_pids()
            for pid in self._fd_count.keys() - pids_now:
                self._forget(pid)
            new_pids = pids_now - self._fd_count.keys()
        else:
            pids_now = set()  # not needed: only the first poll uses it
            new_pids = set()
        if first_poll:
            self._full_scan(pids_now, now)
        else:
            self.counters["new_pid_scans"] += len(new_pids)
            for pid in new_pids:
                self._scan(pid, now)
            self._rolling_rescan(now, skip=new_pids)

        # A set the caller passes is used as it is (not modified): the holders cache below
        # recognises the same set by identity.
        listening_set = listening if isinstance(listening, set | frozenset) else set(listening)
        stats: dict[int, ProcStat] = {}
        searched = first_poll  # the first poll was a full scan: nothing left to search
        completed = first_poll  # ... and found every holder of every socket
        while True:
            generation = self._generation
            owners, orphans, owner_pids = self._holders_of(listening_set)
            stats.update(self._check_owners(owner_pids - stats.keys(), now))
            if self._generation != generation:
                continue  # an owner was re-read: look at the holders again
            unresolved = orphans - self._unresolvable
            if unresolved and not searched:
                searched = True
                self._search(unresolved, owner_pids, now)
                continue
            if not completed:
                completed = True
                if self._complete_new_sockets(listening_set, owners, stats, now):
                    continue
            break
        self._listening_seen = listening_set

        if not owner_pids <= stats.keys():
            # Holders that exited (or became unreadable) since they were scanned.
            owners = {
                inode: kept
                for inode, pids in owners.items()
                if (kept := [pid for pid in pids if pid in stats])
            }
        for pid in stats:
            self._recent_owners[pid] = now
        missing = listening_set - owners.keys()
        # Remember what a full scan could not place; forget what stopped listening.
        self._unresolvable &= listening_set
        if first_poll:
            self._unresolvable |= missing
        self._expire_recent_owners(now)
        return owners, stats, missing

    def _complete_new_sockets(
        self,
        listening: AbstractSet[int],
        owners: dict[int, list[int]],
        stats: dict[int, ProcStat],
        now: float,
    ) -> bool:
        """Find every holder of the sockets that are new since the last call; True if any was.

        A new socket's first known holder is often not its only one: a gunicorn master or a
        reloader binds it, and we learn of it through the workers or the child it forks, which
        are new processes and so scanned at once, while the parent that bound it was scanned
        before it bound and would wait for the rolling rescan (up to `full_rescan_every`). The
        parent bound it, so its fd table changed: re-read the new holders' ancestors and every
        process whose fd table changed since it was read. A new socket is rare; on an idle
        poll this costs one set comparison.
        """
        seen = self._listening_seen
        if listening is seen:
            return False
        fresh = listening - seen
        if not fresh:
            return False
        generation = self._generation
        holders = {pid for inode in fresh for pid in owners.get(inode, ())}
        for pid in self._ancestors(holders, stats):
            # Even with an unchanged fd count: it may have closed one fd as it bound the socket.
            if pid in self._fd_count:
                self.counters["new_socket_scans"] += 1
                self._scan(pid, now)
        self._scan_changed(now)
        return self._generation != generation

    def _ancestors(self, pids: set[int], stats: dict[int, ProcStat]) -> set[int]:
        """The parents, grandparents, ... of `pids` below pid 1 (that are not in `pids`)."""
        found: set[int] = set()
        for pid in pids:
            stat = stats.get(pid) or read_stat(pid)
            for _ in range(64):  # a bound: pid namespaces and reparenting cannot make a loop
                if stat is None or stat.ppid <= 1 or stat.ppid in found or stat.ppid in pids:
                    break
                found.add(stat.ppid)
                stat = read_stat(stat.ppid)
        return found

    def _scan_changed(self, now: float) -> None:
        """Re-read every known process whose fd table changed since it was last read."""
        for pid, count in list(self._fd_count.items()):
            if self._count_fds(pid) != count:
                self.counters["new_socket_scans"] += 1
                self._scan(pid, now)

    def _holders_of(
        self, listening: AbstractSet[int]
    ) -> tuple[dict[int, list[int]], set[int], set[int]]:
        """(inode -> holder pids, listening inodes without a known holder, all holder pids).

        One pass over every listener, so it is cached until the holders map changes.
        """
        cached = self._holders_cache
        if (
            cached is not None
            and cached.generation == self._generation
            and (cached.listening is listening or cached.listening == listening)
        ):
            return cached.owners, cached.orphans, cached.owner_pids
        owners: dict[int, list[int]] = {}
        orphans: set[int] = set()
        owner_pids: set[int] = set()
        holders_by_inode = self._holders
        for inode in listening:
            holders = holders_by_inode.get(inode)
            if holders:
                owners[inode] = list(holders)
                owner_pids.update(holders)
            elif inode:  # 0 is a socket the kernel holds itself: no process can own it
                orphans.add(inode)
        self._holders_cache = _HoldersView(self._generation, listening, owners, orphans, owner_pids)
        return owners, orphans, owner_pids

    # -- scanning ---------------------------------------------------------------------------------

    def _scan(
        self, pid: int, now: float, activity: Activity | _NotRead | None = _NOT_READ
    ) -> ProcStat | None:
        """Read every fd link of one process and replace what we knew of it; returns its stat."""
        self.counters["scans"] += 1
        # Take the count, the start time and the threads' run counters before listing: a change
        # during the listing then shows up next time and triggers another read, never a miss.
        self._activity[pid] = processes.thread_activity(pid) if activity is _NOT_READ else activity
        count = self._count_fds(pid)
        stat = self._read_stat(pid, now)
        self._start[pid] = stat.start_ticks if stat else -1
        self._rescan_due[pid] = now + self.full_rescan_every
        sockets = self._read_socket_fds(pid)
        old = self._sockets_of.get(pid)
        if sockets is not None and sockets == old:
            # The usual outcome of the rolling rescan: nothing changed, the maps stay as they are.
            self._fd_count[pid] = count
            return stat
        old = self._unlink(pid)
        if sockets is None:
            # Keep the count even so: the search re-reads this pid only when it changes.
            self._fd_count[pid] = count
            self._sockets_of[pid] = {}
            if old:
                self._generation += 1
            return stat
        self._fd_count[pid] = count
        self._sockets_of[pid] = sockets
        if sockets != old:
            self._generation += 1
        holders_by_inode = self._holders
        for inode, fd in sockets.items():
            holders = holders_by_inode.get(inode)
            if holders is None:
                holders_by_inode[inode] = {pid: fd}
            else:
                holders[pid] = fd
        return stat

    def _read_socket_fds(self, pid: int) -> dict[int, int] | None:
        """{socket inode: fd} of one process; None when its fd table is not readable."""
        try:
            dir_fd = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        sockets: dict[int, int] = {}
        try:
            names = os.listdir(dir_fd)
            self.counters["readlinks"] += len(names)
            readlink = os.readlink
            for name in names:
                try:
                    target = readlink(name, dir_fd=dir_fd)
                except OSError:
                    continue  # closed while we read
                if target.startswith(_SOCKET_PREFIX):
                    sockets[int(target[8:-1])] = int(name)
        except OSError:
            return None
        finally:
            os.close(dir_fd)
        return sockets

    def _count_fds(self, pid: int) -> FdSignature:
        """(inode, open fds) of /proc/PID/fd: a close, a received fd or a new process changes it."""
        try:
            st = os.stat(f"/proc/{pid}/fd")
        except OSError:
            return _UNREADABLE
        if self._counts_fds:
            return (st.st_ino, st.st_size)
        # Older kernels: listing the directory is still far cheaper than reading every link.
        try:
            return (st.st_ino, len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            return _UNREADABLE

    def _read_stat(self, pid: int, now: float) -> ProcStat | None:
        self.counters["stat_reads"] += 1
        stat = read_stat(pid)
        if stat is None:
            self._stats.pop(pid, None)
            return None
        previous = self._stats.get(pid)
        reads = 1 if previous is None or previous.stat.start_ticks != stat.start_ticks else 2
        self._stats[pid] = _KeptStat(stat, now, reads)
        return stat

    def _full_scan(self, pids: Iterable[int], now: float) -> None:
        self.counters["full_scans"] += 1
        self._last_full_scan = now
        pids = list(pids)
        for index, pid in enumerate(pids):
            self._scan(pid, now)
            # Spread the next rolling rescan evenly over the interval so it never spikes.
            self._rescan_due[pid] = now + self.full_rescan_every * (index + 1) / len(pids)

    def _rolling_rescan(self, now: float, skip: set[int]) -> None:
        due = [pid for pid, when in self._rescan_due.items() if when <= now and pid not in skip]
        for pid in due:
            activity = processes.thread_activity(pid)
            if activity is not None and activity == self._activity.get(pid):
                # None of its threads has run since we read its fds, so it made no system call:
                # its fd table is as we read it. Most processes sleep; reading the run counters
                # of all is a tenth of reading all their fd links (docs/benchmarks.md).
                self.counters["rolling_skips"] += 1
                self._rescan_due[pid] = now + self.full_rescan_every
                continue
            self.counters["rolling_scans"] += 1
            self._scan(pid, now, activity)

    def _unlink(self, pid: int) -> dict[int, int]:
        """Take `pid` out of both socket maps; returns the {inode: fd} it held."""
        old = self._sockets_of.pop(pid, {})
        for inode in old:
            holders = self._holders.get(inode)
            if holders is not None:
                holders.pop(pid, None)
                if not holders:
                    del self._holders[inode]
        return old

    def _forget(self, pid: int) -> None:
        if self._unlink(pid):
            self._generation += 1
        self._fd_count.pop(pid, None)
        self._start.pop(pid, None)
        self._stats.pop(pid, None)
        self._rescan_due.pop(pid, None)
        self._activity.pop(pid, None)
        self._recent_owners.pop(pid, None)

    # -- keeping owners right ---------------------------------------------------------------------

    def _check_owners(self, pids: set[int], now: float) -> dict[int, ProcStat]:
        """Re-read owners whose fd count changed or whose pid was reused; return their stat.

        One `stat` of /proc/PID/fd per owner and poll; /proc/PID/stat only when the kept one is
        older than `usage_max_age`, or was the process's first read (a CPU share needs two).
        """
        stats: dict[int, ProcStat] = {}
        usage_max_age = self.usage_max_age
        for pid in pids:
            signature = self._count_fds(pid)
            if signature == _UNREADABLE:
                # Exited since we listed /proc (an owner's fd table was readable when scanned).
                self._forget(pid)
                continue
            if signature != self._fd_count.get(pid):  # closed or received fds, or a new process
                self.counters["owner_scans"] += 1
                stat = self._scan(pid, now)
                if stat is None:
                    self._forget(pid)
                    continue
                stats[pid] = stat
                continue
            kept = self._stats.get(pid)
            if (
                kept is None
                or now - kept.read_at >= usage_max_age
                # one read, on an earlier poll: take another
                or (kept.reads < 2 and kept.read_at < now)
            ):
                stat = self._read_stat(pid, now)
                if stat is None:
                    self._forget(pid)  # exited since we listed /proc
                    continue
                if stat.start_ticks != self._start.get(pid):  # a new process behind an old pid
                    self.counters["owner_scans"] += 1
                    stat = self._scan(pid, now)
                    if stat is None:
                        continue
            else:
                stat = kept.stat
            stats[pid] = stat
        return stats

    def _unowned(self, listening: Collection[int]) -> set[int]:
        holders = self._holders
        unresolvable = self._unresolvable
        # Inode 0 is a socket the kernel holds itself: no process can own it.
        return {
            inode
            for inode in listening
            if inode and inode not in holders and inode not in unresolvable
        }

    def _search(self, unresolved: set[int], owner_pids: set[int], now: float) -> set[int]:
        """Look for the owners of listeners nobody is known to hold, cheapest places first."""
        scans_before = self.counters["scans"]
        try:
            return self._search_steps(unresolved, owner_pids, now)
        finally:
            self.counters["search_scans"] += self.counters["scans"] - scans_before

    def _search_steps(self, unresolved: set[int], owner_pids: set[int], now: float) -> set[int]:
        # Processes that held a listener lately and hold none now: a server re-binding.
        for pid in [pid for pid in self._recent_owners if pid not in owner_pids]:
            if pid in self._fd_count:
                self._scan(pid, now)
        unresolved = self._unowned(unresolved)
        if not unresolved:
            return unresolved

        changed = [pid for pid, count in self._fd_count.items() if self._count_fds(pid) != count]
        for pid in changed:
            self._scan(pid, now)
        unresolved = self._unowned(unresolved)
        if not unresolved:
            return unresolved

        # Same fd count but maybe a different process: the pid was reused since we read it.
        reused = []
        for pid, start in self._start.items():
            stat = read_stat(pid)
            if stat is not None and stat.start_ticks != start:
                reused.append(pid)
        for pid in reused:
            self._scan(pid, now)
        unresolved = self._unowned(unresolved)
        if not unresolved:
            return unresolved

        # Same count, same process: it closed one fd and opened the socket on the same number.
        # Only a process that ran since we read it can have, and most processes sleep.
        for pid, seen in list(self._activity.items()):
            activity = processes.thread_activity(pid)
            if activity is None or activity != seen:
                self._scan(pid, now, activity)
        unresolved = self._unowned(unresolved)
        if not unresolved:
            return unresolved

        if now - self._last_full_scan >= self.fallback_scan_every:
            self._full_scan(processes.list_pids(), now)
            unresolved = self._unowned(unresolved)
            self._unresolvable |= unresolved
        return unresolved

    def _expire_recent_owners(self, now: float) -> None:
        expired = [
            pid for pid, when in self._recent_owners.items() if now - when > self.recent_owner_for
        ]
        for pid in expired:
            del self._recent_owners[pid]
