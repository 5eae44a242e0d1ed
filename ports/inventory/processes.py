"""Process details from /proc (Linux): cheap per-poll numbers and a cache for the rest.

`/proc/PID/stat` is one small read and gives what changes (ppid, CPU ticks, rss) together with
the start time, which identifies a process: a pid alone can be reused, (pid, start time) cannot.
Name, user, command line and cwd are read once per (pid, start time) and refreshed now and then.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import time
from typing import NamedTuple

from ports.inventory.records import ProcessInfo

CMDLINE_MAX = 500
# Command lines and cwd can change (setproctitle, chdir); re-read them this often.
DETAILS_MAX_AGE = 30.0

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


Activity = tuple[bytes, ...]  # each thread's id and schedstat line (see thread_activity)


class ProcStat(NamedTuple):
    """The fields of /proc/PID/stat we use."""

    comm: str
    ppid: int
    cpu_ticks: int  # utime + stime
    start_ticks: int  # clock ticks after boot; with the pid, the identity of a process
    rss_pages: int
    pgid: int = 0  # process group: a shell makes one per job, with the job's first process leading
    sid: int = 0  # session
    tty: int = 0  # controlling terminal's device number; 0 for none


def read_stat(pid: int) -> ProcStat | None:
    """None when the process is gone."""
    # os.open/os.read rather than open(): this runs for every owner on every poll, and the
    # buffered file object costs three times the syscalls' own time.
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # comm is in parentheses and may itself contain spaces and ')', so split at the last one.
    close = raw.rfind(b")")
    fields = raw[close + 2 :].split()
    try:
        return ProcStat(
            comm=raw[raw.find(b"(") + 1 : close].decode(errors="replace"),
            ppid=int(fields[1]),
            cpu_ticks=int(fields[11]) + int(fields[12]),
            start_ticks=int(fields[19]),
            rss_pages=int(fields[21]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            tty=int(fields[4]),
        )
    except (IndexError, ValueError):
        return None  # a zombie mid-exit can show a truncated line


def boot_time() -> float:
    """Boot time in epoch seconds, as psutil computes it (so create_time values agree)."""
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise RuntimeError("no btime in /proc/stat")


# btime is the wall clock minus the time since boot: it moves when the clock is stepped (NTP, a
# VM's host, a laptop's resume), and psutil, scripts and the port page then all compute new
# create times. Read again at most this often, so the console agrees with them after a step.
BOOT_TIME_RECHECK_SECONDS = 1.0
# Every boot time this process has computed create times with, newest last: a create time handed
# out before a step (in a page, a form, a script's saved listing) is still recognised after it.
BOOT_TIMES_KEPT = 32
_boot = [boot_time() if os.path.exists("/proc/stat") else 0.0, time.monotonic()]  # value, read at
_boot_times_seen: list[float] = [_boot[0]]


def current_boot_time() -> float:
    value, read_at = _boot
    now = time.monotonic()
    if now - read_at >= BOOT_TIME_RECHECK_SECONDS and value:
        with contextlib.suppress(OSError, RuntimeError):
            value = boot_time()
        if value not in _boot_times_seen:
            _boot_times_seen.append(value)
            del _boot_times_seen[:-BOOT_TIMES_KEPT]
        _boot[:] = [value, now]  # one list assignment: a racing reader sees old or new, whole
    return value


def create_time_of(start_ticks: int) -> float:
    """Seconds since the epoch, as psutil computes them: boot time now plus the start ticks."""
    return round(current_boot_time() + start_ticks / CLOCK_TICKS, 2)


def same_start(create_time: float, expected: float, tolerance: float) -> bool:
    """Whether two create times name the same start of a process, even when a step of the wall
    clock came between them: each was boot time plus the same start ticks, so they may differ
    by exactly the difference of two boot times this process has used, and by nothing else."""
    apart = create_time - expected
    seen = list(_boot_times_seen)
    return any(abs(apart - (then - now)) <= tolerance for then in seen for now in seen)


_user_names: dict[int, str | None] = {}


def user_name(uid: int) -> str | None:
    if uid not in _user_names:
        try:
            _user_names[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _user_names[uid] = None
    return _user_names[uid]


class StaticDetails(NamedTuple):
    name: str
    user: str | None
    cmdline: str
    cwd: str | None
    read_at: float  # monotonic


def _read_static(pid: int, stat: ProcStat, now: float) -> StaticDetails | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
        uid = None
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    uid = int(line.split()[1])  # the real uid, as psutil's username() uses
                    break
    except (OSError, ValueError):
        return None
    try:
        cwd: str | None = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = None  # another user's process, or a kernel thread
    args = [arg.decode(errors="replace") for arg in argv if arg]
    return StaticDetails(
        name=process_name(stat.comm, args),
        user=user_name(uid) if uid is not None else None,
        cmdline=" ".join(args)[:CMDLINE_MAX],
        cwd=cwd,
        read_at=now,
    )


def process_name(comm: str, args: list[str]) -> str:
    # The kernel truncates comm to 15 bytes; recover the full name from argv[0] like psutil does.
    if len(comm) >= 15 and args:
        base = os.path.basename(args[0])
        if base.startswith(comm):
            return base
    return comm


def process_info(pid: int) -> ProcessInfo | None:
    """A fresh read of one process, bypassing every cache; None when it is gone."""
    stat = read_stat(pid)
    if stat is None:
        return None
    static = _read_static(pid, stat, time.monotonic())
    if static is None:
        return None
    # The process may have exited and its pid been reused while we read: check identity again.
    again = read_stat(pid)
    if again is None or again.start_ticks != stat.start_ticks:
        return None
    return _info(pid, static, stat, stat.rss_pages * PAGE_SIZE)


class _CpuSample(NamedTuple):
    """A process's CPU time at one snapshot: two of them make its CPU share."""

    ticks: int
    at: float  # monotonic seconds


def _info(
    pid: int, static: StaticDetails, stat: ProcStat, rss: int, cpu_percent: float | None = None
) -> ProcessInfo:
    """The record of a process from its kept details and its latest /proc/PID/stat."""
    return ProcessInfo(
        pid=pid,
        name=static.name,
        user=static.user,
        cmdline=static.cmdline,
        cwd=static.cwd,
        create_time=create_time_of(stat.start_ticks),  # not kept: the clock may have been stepped
        ppid=stat.ppid,
        rss=rss,
        cpu_percent=cpu_percent,
    )


class ProcessDetails:
    """Builds ProcessInfo for owner processes, caching by (pid, start time)."""

    def __init__(self, max_age: float = DETAILS_MAX_AGE) -> None:
        self.max_age = max_age
        self._static: dict[tuple[int, int], StaticDetails] = {}
        # (pid, start) -> its CPU time at the previous snapshot, for cpu_percent.
        self._cpu: dict[tuple[int, int], _CpuSample] = {}
        # (pid, start) -> the ProcessInfo returned last time, handed out again while nothing in
        # it changed: an idle server keeps identical records, which callers can compare cheaply.
        self._last: dict[tuple[int, int], ProcessInfo] = {}
        # (pid, start) -> the ProcStat that ProcessInfo was made from. The resolver hands out the
        # same ProcStat object until it reads /proc/PID/stat again (at most once a second, see
        # socket_owners.USAGE_MAX_AGE): until then the record stands as it is, and cpu_percent is
        # the share over the interval between the last two reads.
        self._made_from: dict[tuple[int, int], ProcStat] = {}

    def info(self, pid: int, stat: ProcStat, now: float) -> ProcessInfo | None:
        key = (pid, stat.start_ticks)
        if self._made_from.get(key) is stat:
            return self._last[key]
        static = self._static.get(key)
        if static is None or now - static.read_at > self.max_age:
            static = _read_static(pid, stat, now) or static
            if static is None:
                return None
            self._static[key] = static
        previous = self._cpu.get(key)
        self._cpu[key] = _CpuSample(stat.cpu_ticks, now)
        cpu_percent = None
        if previous is not None and now > previous.at:
            used = (stat.cpu_ticks - previous.ticks) / CLOCK_TICKS
            cpu_percent = round(100.0 * used / (now - previous.at), 1)
        rss = stat.rss_pages * PAGE_SIZE
        last = self._last.get(key)
        if (
            last is not None
            and last.cpu_percent == cpu_percent
            and last.rss == rss
            and last.ppid == stat.ppid
            and last.cmdline is static.cmdline
            and last.cwd == static.cwd
        ):
            self._made_from[key] = stat
            return last
        self._made_from[key] = stat
        info = self._last[key] = _info(pid, static, stat, rss, cpu_percent)
        return info

    def forget_except(self, alive: set[tuple[int, int]]) -> None:
        """Drop processes that are no longer owners, so a reused pid starts clean."""
        for cache in (self._static, self._cpu, self._last, self._made_from):
            if len(cache) > len(alive):
                for key in cache.keys() - alive:
                    del cache[key]


# -- counters the socket-owner cache reads (ports.inventory.socket_owners) ---------------------


def thread_activity(pid: int) -> Activity | None:
    """What each thread of a process has run: /proc/PID/task/TID/schedstat, by thread.

    Its fields (time on a CPU in ns, time waiting for one, times scheduled in) move whenever the
    thread runs at all, and a process changes its fd table only by running. None when unreadable.
    """
    try:
        tasks = os.open(f"/proc/{pid}/task", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        threads = []
        for tid in os.listdir(tasks):
            fd = os.open(f"{tid}/schedstat", os.O_RDONLY, dir_fd=tasks)
            try:
                threads.append(tid.encode() + b" " + os.read(fd, 128))
            finally:
                os.close(fd)
        return tuple(threads)
    except OSError:
        return None  # a thread came or went while we read: count the process as active
    finally:
        os.close(tasks)


def list_pids() -> set[int]:
    return {int(name) for name in os.listdir("/proc") if name.isdigit()}


def task_counters() -> tuple[bytes, bytes] | None:
    """(tasks on the machine, last pid handed out in this pid namespace) from /proc/loadavg.

    "0.50 0.40 0.30 2/150 12345": 150 tasks (threads) exist and 12345 was the last pid handed
    out; a fork or thread start moves the second, reaping one moves the first.
    """
    try:
        fd = os.open("/proc/loadavg", os.O_RDONLY)
    except OSError:
        return None
    try:
        fields = os.read(fd, 256).split()
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(fields) < 5 or b"/" not in fields[3]:
        return None
    return fields[3].partition(b"/")[2], fields[4]


def same_pid_namespace() -> bool:
    """Whether /proc is our pid namespace's: loadavg's last pid is counted per namespace."""
    try:
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False
