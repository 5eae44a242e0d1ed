"""Benchmark: does the sampler's first event for a real dev server already name all its holders?

    .venv/bin/python -m bench.servers                 # every kind, 20 starts each (10-20 minutes)
    .venv/bin/python -m bench.servers --quick         # 3 starts of each kind
    .venv/bin/python -m bench.servers --kinds gunicorn-w3 flask-debug --runs 5

Starts each kind of tests/ports/real_servers.py (gunicorn with workers, Flask --debug, Django
runserver, uvicorn --reload and --workers, a fork-per-request server, Vite) again and again, each
time on a fresh free loopback port at a random moment of the sampling interval, while a thread
does what the console's sampler does: one warm `Inventory` polled every 250 ms, its listeners
keyed and diffed. For each start it compares that sampler's events with the truth:

- the truth comes from a separate poller process (no GIL shared with the engine) that reads
  /proc/net/tcp{,6} every 5 ms until the port is in LISTEN (that moment is "listen()", seen at most
  5 ms late, so latencies below are at most 5 ms short), then every fd link on the machine every
  20 ms for `--settle` seconds: which pids hold each listening inode, and when that changed;
- "complete" is the holder set the poller saw last, once it had been stable for a second;
- first event complete: the first snapshot that showed the listener had that whole set;
- first event right for its moment: its set matched what the poller saw around that snapshot
  (a gunicorn worker that forks 150 ms after listen() is rightly missing from an event before it);
- listen() -> complete event: until the first snapshot whose set is the complete one, at most
  `--deadline` seconds after listen() (a miss counts as the deadline, and is counted);
- owner changes: how often the set changed between snapshots after the first event (each one
  an `owner-changed` the sampler would log), and transient listeners: other sockets on the port
  that came and went (Vite probes the wildcard addresses before it binds its own).

Beside it, in the same run: `ss -tulnp` once per start while the server is up, and the engine's own
poll durations. Every server is stopped through its own process group (real_servers.running),
also on error or Ctrl-C; the poller dies with this process.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest

from ports.free_ports import find_free_port
from ports.inventory import Inventory
from tests.ports.real_servers import KINDS, LISTEN_DEADLINE_S, running

INTERVAL_S = 0.25  # the console's default sampling interval
# Kinds that fork per request: after the start is measured, requests show how often a raw diff
# of holder sets would report an owner change for forks that live 150 ms.
LOAD_KINDS = frozenset({"forking"})
Key = tuple[str, str, str, int, int]

# argv: parent pid, port, settle seconds, give-up seconds. Prints "ready", then once the newest
# listening inode on the port is `settle` seconds old one JSON line: {"first_seen": {inode: t},
# "timeline": [[t, {inode: [pids]}], ...]}. /proc/net/tcp every 5 ms, holders on each change of
# the inode set and every 20 ms. -I -S: it starts in ~15 ms.
TRUTH_POLLER = """
import ctypes, json, os, sys, time
ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG: never outlive the benchmark
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
port, settle, give_up = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
suffix = ":%04X" % port

def listening():
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                f = row.split()
                if f[3] == "0A" and f[1].endswith(suffix):
                    inodes.add(int(f[9]))
    return inodes

def holders(inodes):
    links = {"socket:[%d]" % inode: inode for inode in inodes}
    found = {str(inode): [] for inode in inodes}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % name)
        except OSError:
            continue
        held = set()
        for fd in fds:
            try:
                inode = links.get(os.readlink("/proc/%s/fd/%s" % (name, fd)))
            except OSError:
                continue
            if inode is not None and inode not in held:
                held.add(inode)
                found[str(inode)].append(int(name))
    return {inode: sorted(pids) for inode, pids in found.items()}

print("ready", flush=True)
started, first_seen, timeline, scanned, inodes = time.time(), {}, [], 0.0, set()
while time.time() - started < give_up:
    now = time.time()
    previous, inodes = inodes, listening()
    for inode in inodes - set(first_seen):
        first_seen[inode] = now
    if first_seen and (inodes != previous or now - scanned >= 0.02):
        scanned, state = now, holders(inodes)
        if not timeline or timeline[-1][1] != state:
            timeline.append([now, state])
    if first_seen and now - max(first_seen.values()) > settle:
        break
    time.sleep(0.005)
print(json.dumps({"first_seen": first_seen, "timeline": timeline}), flush=True)
"""


@dataclass
class Sample:
    sampled_at: float  # time.time() when the snapshot began
    done_at: float  # when it returned: when the sampler would publish its events
    listeners: dict[Key, tuple[int, ...]]  # TCP listeners on the watched port -> pids


class SamplerThread(threading.Thread):
    """The console sampler's loop, reduced to what matters here: snapshot every 250 ms, keep
    the TCP listeners of one watched port. One warm engine for the whole run, as the console."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.interval = interval
        self.engine = Inventory()
        self.watched: int | None = None
        self.samples: list[Sample] = []
        self.durations_ms: list[float] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        next_poll = time.monotonic()
        while not self.stopping.is_set():
            sampled_at = time.time()
            snap = self.engine.snapshot()
            done_at = time.time()
            self.durations_ms.append(snap.duration_ms)
            port = self.watched
            if port is not None:
                found = {
                    listener.key: listener.pids
                    for listener in snap.listeners
                    if listener.port == port and listener.proto == "tcp"
                }
                with self.lock:
                    self.samples.append(Sample(sampled_at, done_at, found))
            next_poll += self.interval
            self.stopping.wait(max(0.0, next_poll - time.monotonic()))

    def watch(self, port: int) -> None:
        with self.lock:
            self.watched, self.samples = port, []

    def taken(self) -> list[Sample]:
        with self.lock:
            return list(self.samples)


@dataclass
class StartResult:
    first_complete: bool
    first_right_for_moment: bool
    latency_ms: float  # listen() -> first complete event; the deadline when it never came
    missed: bool  # no complete event within the deadline
    owner_changes: int
    transient: tuple[int, int]  # other listeners on the port that came and went: (poller, sampler)
    ss_ms: float
    wrong: str = ""  # for a first event wrong for its moment: what it said and what was true
    load_changes: int | None = None  # holder-set changes while answering requests (LOAD_KINDS)


@dataclass
class KindResult:
    kind: str
    starts: list[StartResult] = field(default_factory=list)
    skipped: str = ""
    failures: list[str] = field(default_factory=list)


def truth_of(poller: subprocess.Popen[str]) -> dict:
    assert poller.stdout is not None
    line = poller.stdout.readline()
    poller.wait(timeout=30)
    poller.stdout.close()
    if not line:
        raise RuntimeError(f"truth poller exited with {poller.returncode} and no report")
    return json.loads(line)


def stable_holders(timeline: list, settle: float) -> dict[int, frozenset[int]]:
    """The last holder set of each listening inode; fails when it changed in the last second."""
    last_change, state = timeline[-1]
    if time.time() - last_change < 1.0 and len(timeline) > 1:
        raise RuntimeError(f"holders still changing at the end of {settle:.1f} s")
    complete = {int(inode): frozenset(pids) for inode, pids in state.items() if pids}
    if not complete:
        raise RuntimeError("the listening socket has no holder the poller could see")
    return complete


# The poller reads holders every 20 ms (and /proc/net/tcp every 5 ms), so a snapshot is judged
# against what it saw from just before the snapshot began until one holder scan after it ended.
TRUTH_SLACK_S = 0.025


def truth_around(timeline: list, start: float, end: float, inode: int) -> list[frozenset[int]]:
    """The holder sets of `inode` the poller saw around a snapshot taken from `start` to `end`."""
    key = str(inode)
    seen = [(at, frozenset(state.get(key, ()))) for at, state in timeline if key in state]
    if not seen:
        return []
    sets = [pids for at, pids in seen if start <= at <= end + TRUTH_SLACK_S]
    before = [pids for at, pids in seen if at < start]
    # The state in force when the snapshot began; or, when the engine saw the socket before the
    # poller's next read did, the poller's first view of it.
    sets.insert(0, before[-1] if before else seen[0][1])
    return sets


def measure_start(
    kind: str, port: int, sampler: SamplerThread, tmp: Path, args: argparse.Namespace
) -> StartResult:
    sampler.watch(port)
    poller = subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            TRUTH_POLLER,
            str(os.getpid()),
            str(port),
            str(args.settle),
            str(LISTEN_DEADLINE_S + args.settle),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert poller.stdout is not None
    if poller.stdout.readline().strip() != "ready":
        raise RuntimeError("truth poller did not start")
    # A random phase against the sampler's clock: real servers start at any moment.
    time.sleep(random.uniform(0, sampler.interval))
    try:
        with running(kind, port, tmp_path=tmp) as server:
            truth = truth_of(poller)
            if not truth["first_seen"]:
                server.wait_listening(timeout=1)  # fails with the server's log
            first_seen = {int(inode): at for inode, at in truth["first_seen"].items()}
            complete = stable_holders(truth["timeline"], args.settle)
            deadline = max(first_seen[inode] for inode in complete) + args.deadline
            while time.time() < deadline and not _complete_seen(sampler.taken(), complete):
                time.sleep(0.05)
            started = time.perf_counter()
            subprocess.run(["ss", "-tulnp"], capture_output=True, check=False)
            ss_ms = (time.perf_counter() - started) * 1000
            samples = sampler.taken()
            load_changes = _changes_under_load(kind, port, sampler, complete, args)
    finally:
        if poller.poll() is None:
            poller.kill()  # our own child, by its handle
            poller.wait()
    result = judge(samples, truth["timeline"], complete, first_seen, args.deadline, ss_ms)
    result.load_changes = load_changes
    return result


def _changes_under_load(
    kind: str, port: int, sampler: SamplerThread, complete: dict[int, frozenset[int]], args
) -> int | None:
    """For a fork-per-request server: holder-set changes the sampler saw while it answered
    `--requests` requests, each connection held 150 ms (a fork that lives that long)."""
    if kind not in LOAD_KINDS or args.requests <= 0:
        return None
    before = len(sampler.taken())
    for _ in range(args.requests):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            time.sleep(0.15)
            client.sendall(b"ping\n")
            client.recv(64)
        time.sleep(0.05)
    time.sleep(sampler.interval * 2)  # the last fork exits and a snapshot shows it
    during = sampler.taken()[before:]
    changes = 0
    for inode in complete:
        sets = [pids for s in during for key, pids in s.listeners.items() if key[4] == inode]
        changes += sum(1 for a, b in itertools.pairwise(sets) if a != b)
    return changes


def _complete_seen(samples: list[Sample], complete: dict[int, frozenset[int]]) -> bool:
    return any(
        all(
            any(key[4] == inode and set(pids) == holders for key, pids in s.listeners.items())
            for inode, holders in complete.items()
        )
        for s in samples
    )


def judge(
    samples: list[Sample],
    timeline: list,
    complete: dict[int, frozenset[int]],
    first_seen: dict[int, float],
    deadline_s: float,
    ss_ms: float,
) -> StartResult:
    """One start's figures from the sampler's samples and the poller's truth."""
    first_complete = first_right = True
    wrong = ""
    latency = 0.0
    missed = False
    owner_changes = 0
    for inode, holders in complete.items():
        seen = [(s, pids) for s in samples for key, pids in s.listeners.items() if key[4] == inode]
        if not seen:
            first_complete = first_right = False
            missed = True
            latency = max(latency, deadline_s * 1000)
            continue
        first, first_pids = seen[0]
        # listen() happened before whichever of the poller and the engine saw the socket first.
        listened = min(first_seen[inode], first.done_at)
        if set(first_pids) != holders:
            first_complete = False
        around = truth_around(timeline, first.sampled_at, first.done_at, inode)
        if frozenset(first_pids) not in around:
            first_right = False
            distinct = list(dict.fromkeys(around))
            truths = " or ".join(str(sorted(pids)) for pids in distinct) or "nothing"
            wrong = (
                f"first event {(first.done_at - listened) * 1000:.0f} ms after "
                f"listen() had {sorted(first_pids)}, the holders were {truths}; complete "
                f"{sorted(holders)}"
            )
        done = next((s for s, pids in seen if set(pids) == holders), None)
        if done is None:
            missed = True
            latency = max(latency, deadline_s * 1000)
        else:
            latency = max(latency, (done.done_at - listened) * 1000)
        owner_changes += sum(1 for a, b in itertools.pairwise(seen) if a[1] != b[1])
    final = set(complete)
    transient = (
        len(set(first_seen) - final),
        len({key for s in samples for key in s.listeners if key[4] not in final}),
    )
    return StartResult(
        first_complete, first_right, latency, missed, owner_changes, transient, ss_ms, wrong
    )


def run_kind(kind: str, sampler: SamplerThread, args: argparse.Namespace, cursor: list[int]):
    result = KindResult(kind)
    with TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        for _ in range(args.runs):
            port = find_free_port(cursor[0])[0]
            cursor[0] = port + 1
            try:
                result.starts.append(measure_start(kind, port, sampler, Path(tmp), args))
            except pytest.skip.Exception as skip:
                result.skipped = str(skip)
                break
            except (pytest.fail.Exception, RuntimeError, OSError) as failure:
                result.failures.append(f"port {port}: {str(failure)[:300]}")
            print(f"{kind}: {len(result.starts)}/{args.runs}", file=sys.stderr, flush=True)
    return result


# -- the report ----------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def revision() -> str:
    """The commit measured, and whether the engine's files differed from it."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "an unknown commit (not a git checkout)"
    changed = git("status", "--porcelain", "--", "ports")
    return f"commit {commit}" + (" with uncommitted changes in ports/" if changed else "")


def render(results: list[KindResult], sampler: SamplerThread, args, elapsed: float) -> str:
    user = "root" if os.geteuid() == 0 else "a normal user"
    command = "python -m bench.servers" + (" " + " ".join(args.argv) if args.argv else "")
    lines = [
        f"Command: `.venv/bin/{command}` (run from the repository root, as {user}), "
        f"{time.strftime('%Y-%m-%d')}; {elapsed / 60:.1f} minutes; engine at {revision()}.",
        "",
        f"Machine: {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
        f"{platform.python_version()}. Sampling every {sampler.interval * 1000:.0f} ms with one "
        f"warm engine; truth from a /proc poller (listen() seen within 5 ms, holders every 20 ms); "
        f"complete = the holder set stable for the last second of {args.settle:.1f} s; misses "
        f"count as {args.deadline:.0f} s.",
        "",
        "| kind | starts | first event complete | first event right for its moment "
        "| listen() -> complete p50 ms | p95 ms | max ms | no complete event | owner changes "
        "| transient listeners (truth / sampler) | `ss -tulnp` median ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        starts = result.starts
        if not starts:
            reason = result.skipped or "; ".join(result.failures[:2]) or "no start measured"
            lines.append(f"| {result.kind} | 0 | skipped: {reason} |||||||||")
            continue
        n = len(starts)
        latencies = [s.latency_ms for s in starts]
        missed = sum(s.missed for s in starts)
        lines.append(
            f"| {result.kind} | {n} | {sum(s.first_complete for s in starts)}/{n} "
            f"| {sum(s.first_right_for_moment for s in starts)}/{n} "
            f"| {statistics.median(latencies):.0f} | {percentile(latencies, 0.95):.0f} "
            f"| {max(latencies):.0f} | {missed} | {sum(s.owner_changes for s in starts)} "
            f"| {sum(s.transient[0] for s in starts)} / {sum(s.transient[1] for s in starts)} "
            f"| {statistics.median(s.ss_ms for s in starts):.1f} |"
        )
    durations = sampler.durations_ms
    all_starts = [s for r in results for s in r.starts]
    all_lat = [s.latency_ms for s in all_starts]
    lines.append("")
    if all_starts:
        ss_median = statistics.median(s.ss_ms for s in all_starts)
        lines += [
            f"- All kinds: first event complete {sum(s.first_complete for s in all_starts)}/"
            f"{len(all_starts)} (target: every time); listen() -> complete event p95 "
            f"{percentile(all_lat, 0.95):.0f} ms (target <= 400 ms: "
            f"{'met' if percentile(all_lat, 0.95) <= 400 else 'NOT met'}).",
            f"- Engine polls during the run: {len(durations)}, median "
            f"{statistics.median(durations):.2f} ms, p95 {percentile(durations, 0.95):.2f} ms; "
            f"`ss -tulnp` median {ss_median:.1f} ms over {len(all_starts)} runs (one per start).",
        ]
    for result in results:
        loads = [s.load_changes for s in result.starts if s.load_changes is not None]
        if loads:
            lines.append(
                f"- {result.kind}: {args.requests} requests per start (each a fork holding the "
                f"listener about 150 ms): {sum(loads)} holder-set changes in the raw diff over "
                f"{len(loads)} starts, {sum(loads) / len(loads):.1f} per start (each an "
                f"`owner-changed` for a naive diff; a fork under a second should not be one)."
            )
        for number, start in enumerate(result.starts, 1):
            if start.wrong:
                lines.append(f"- {result.kind}, start {number}: {start.wrong}.")
        for failure in result.failures:
            lines.append(f"- {result.kind} failed to start once: {failure}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="starts of each kind")
    parser.add_argument("--quick", action="store_true", help="3 starts of each kind")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--settle", type=float, default=2.5, help="seconds watched after listen")
    parser.add_argument("--deadline", type=float, default=6.0, help="seconds to a complete event")
    parser.add_argument("--interval-ms", type=int, default=int(INTERVAL_S * 1000))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--requests", type=int, default=10, help="requests to each fork-per-request start"
    )
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.quick:
        args.runs = 3
    if not sys.platform.startswith("linux"):
        print("bench.servers reads /proc: Linux only", file=sys.stderr)
        return 2
    random.seed(args.seed)
    # Ctrl-C and SIGTERM unwind through running()'s `finally`, which stops the server's group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sampler = SamplerThread(args.interval_ms / 1000)
    sampler.start()
    started = time.monotonic()
    cursor = [21000]
    try:
        results = [run_kind(kind, sampler, args, cursor) for kind in args.kinds]
    finally:
        sampler.stopping.set()
        sampler.join(timeout=5)
    print(render(results, sampler, args, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
