"""Benchmark of the port inventory against ss, lsof and psutil on a busy, realistic machine.

    .venv/bin/python -m bench.inventory            # the full scenario (about a minute)
    .venv/bin/python -m bench.inventory --small    # a quick smoke run

Builds a scenario of child processes (by default 1,000 listeners across 50 processes, 10 of them
pre-fork servers sharing their sockets with a worker, 200 idle processes and 10,000 established
loopback connections), then times `snapshot()` cold and warm against `ss -tulnp`,
`lsof -i -P -n -sTCP:LISTEN` and `psutil.net_connections`, checks that every tool reports the
same (proto, address, port, pid) set for the scenario's sockets, measures the CPU cost of
polling every 250 ms, and prints a markdown block for docs/benchmarks.md.

Every child it starts is ended by its pid, on success, error or Ctrl-C; children also ask the
kernel to kill them if this process dies first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from ports.inventory import Inventory, processes

LSOF = "/usr/bin/lsof"
ADDRESSES = ("127.0.0.1", "::1", "0.0.0.0", "::")
# The address a client dials to reach a listener bound to each of ADDRESSES.
DIAL = {"127.0.0.1": "127.0.0.1", "::1": "::1", "0.0.0.0": "127.0.0.1", "::": "::1"}

_PREAMBLE = """
import ctypes, json, os, selectors, socket, sys, time
ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: never outlive the benchmark
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the benchmark died before prctl took effect
"""

# argv: parent pid, JSON [[proto, host], ...], "1" to fork a worker that shares every socket.
LISTENER_CHILD = (
    _PREAMBLE
    + """
socks, listeners = [], []
for proto, host in json.loads(sys.argv[2]):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    sock.bind((host, 0))
    if proto == "tcp":
        sock.listen(1024)
        sock.setblocking(False)
    socks.append(sock)
    listeners.append([proto, host, sock.getsockname()[1]])
worker = None
if sys.argv[3] == "1":
    parent = os.getpid()
    worker = os.fork()
    if worker == 0:
        ctypes.CDLL(None).prctl(1, 9)
        if os.getppid() != parent:
            os._exit(1)
        while True:
            time.sleep(3600)
print(json.dumps({"pid": os.getpid(), "worker": worker, "listeners": listeners}), flush=True)
selector = selectors.DefaultSelector()
for sock in socks:
    if sock.type == socket.SOCK_STREAM:
        selector.register(sock, selectors.EVENT_READ)
accepted = []
while True:
    for key, _ in selector.select():
        try:
            accepted.append(key.fileobj.accept()[0])
        except BlockingIOError:
            pass
"""
)

# argv: parent pid, JSON [[host, port], ...] to connect to and hold.
IDLE_CHILD = (
    _PREAMBLE
    + """
held = [socket.create_connection((host, port)) for host, port in json.loads(sys.argv[2])]
print(json.dumps({"pid": os.getpid(), "connections": len(held)}), flush=True)
while True:
    time.sleep(3600)
"""
)

Key = tuple[str, str, int, int]  # (proto, address, port, pid)


@dataclass
class Scenario:
    listener_children: int = 50
    listeners_per_child: int = 20
    preforked: int = 10  # listener children that fork a worker sharing their sockets
    idle_children: int = 200
    connections: int = 10_000
    popens: list[subprocess.Popen[str]] = field(default_factory=list)
    workers: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, start ticks)
    expected: set[Key] = field(default_factory=set)
    triples: set[tuple[str, str, int]] = field(default_factory=set)
    established: int = 0

    def start(self) -> None:
        # Worst case, one listener process accepts every connection; children inherit the limit.
        raise_fd_limit(self.listeners_per_child + self.connections + 64)
        me = str(os.getpid())
        specs = [
            [
                ["tcp" if i % 5 else "udp", ADDRESSES[(c + i) % 4]]
                for i in range(self.listeners_per_child)
            ]
            for c in range(self.listener_children)
        ]
        spawned = [
            self._spawn(LISTENER_CHILD, me, json.dumps(spec), "1" if c < self.preforked else "0")
            for c, spec in enumerate(specs)
        ]
        tcp_targets = []
        for proc in spawned:
            report = json.loads(_first_line(proc))
            holders = [report["pid"]]
            if report["worker"]:
                self.workers.append((report["worker"], _start_ticks(report["worker"])))
                holders.append(report["worker"])
            for proto, host, port in report["listeners"]:
                self.triples.add((proto, host, port))
                self.expected |= {(proto, host, port, pid) for pid in holders}
                if proto == "tcp":
                    tcp_targets.append((DIAL[host], port))

        per_child = self.connections // max(self.idle_children, 1)
        rng = random.Random(7)
        idle = [
            self._spawn(
                IDLE_CHILD, me, json.dumps([rng.choice(tcp_targets) for _ in range(per_child)])
            )
            for _ in range(self.idle_children)
        ]
        for proc in idle:
            self.established += json.loads(_first_line(proc))["connections"]

    def _spawn(self, code: str, *args: str) -> subprocess.Popen[str]:
        # -I -S: no site-packages on startup, so 250 interpreters start quickly.
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", code, *args], stdout=subprocess.PIPE, text=True
        )
        self.popens.append(proc)
        return proc

    def stop(self) -> None:
        for pid, start in self.workers:
            # A worker is our grandchild: signal it only while it is still that process.
            if start is not None and _start_ticks(pid) == start:
                os.kill(pid, signal.SIGKILL)
        for proc in self.popens:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        for proc in self.popens:
            proc.wait(timeout=30)
            if proc.stdout:
                proc.stdout.close()
        self.popens.clear()
        self.workers.clear()

    @property
    def pids(self) -> int:
        return len(self.popens) + len(self.workers)


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards `wanted`, never past the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"child {proc.pid} exited before it was ready ({proc.wait()})")
    return line


def _start_ticks(pid: int) -> int | None:
    stat = processes.read_stat(pid)
    return stat.start_ticks if stat else None


# -- what each tool reports ----------------------------------------------------------------------


def from_snapshot(inventory: Inventory) -> set[Key]:
    return {
        (listener.proto, listener.address, listener.port, pid)
        for listener in inventory.snapshot().listeners
        for pid in listener.pids
    }


def from_ss(output: str) -> set[Key]:
    found = set()
    for line in output.splitlines()[1:]:
        fields = line.split()
        address, port = fields[4].rsplit(":", 1)
        # ss prints a dual-stack IPv6 wildcard as "*" (a v6-only one as "[::]").
        address = address.strip("[]").split("%", 1)[0]
        address = "::" if address == "*" else address
        for pid in re.findall(r"pid=(\d+)", line):
            found.add((fields[0], address, int(port), int(pid)))
    return found


def from_lsof(output: str) -> set[Key]:
    found = set()
    for line in output.splitlines()[1:]:
        fields = line.split()
        # COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME [(STATE)]
        if len(fields) < 9 or "->" in fields[8]:
            continue  # a connected UDP socket
        address, port = fields[8].rsplit(":", 1)
        address = address.strip("[]")
        if address == "*":
            address = "0.0.0.0" if fields[4] == "IPv4" else "::"
        found.add((fields[7].lower(), address, int(port), int(fields[1])))
    return found


def from_psutil(connections: list) -> set[Key]:
    found = set()
    for conn in connections:
        proto = "tcp" if conn.type == socket.SOCK_STREAM else "udp"
        if conn.pid is None or not conn.laddr:
            continue
        if (proto == "tcp" and conn.status == psutil.CONN_LISTEN) or (
            proto == "udp" and not conn.raddr
        ):
            found.add((proto, conn.laddr.ip, conn.laddr.port, conn.pid))
    return found


# -- timing --------------------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    runs_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.runs_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(name: str, runs: int, work: Callable[[], object]) -> tuple[Timing, object]:
    result: object = None
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(name, samples), result


def run_tool(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def poll_cpu(seconds: float, interval: float) -> tuple[float, Timing]:
    """CPU share of one core used by polling snapshot() every `interval` seconds.

    Also returns each poll's duration: between sleeps the CPU caches are cold, so a poll costs
    more than one of the back-to-back warm runs.
    """
    engine = Inventory()
    engine.snapshot()
    durations = []
    cpu_start, wall_start = time.process_time(), time.monotonic()
    next_poll = wall_start
    while time.monotonic() - wall_start < seconds:
        started = time.perf_counter()
        engine.snapshot()
        durations.append((time.perf_counter() - started) * 1000)
        next_poll += interval
        time.sleep(max(0.0, next_poll - time.monotonic()))
    cpu = time.process_time() - cpu_start
    share = 100.0 * cpu / (time.monotonic() - wall_start)
    return share, Timing(f"snapshot() polled every {interval * 1000:.0f} ms", durations)


# -- machine facts -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ss": run_tool(["ss", "-V"]).strip(),
        "lsof": next(
            (
                line.strip()
                for line in subprocess.run(
                    [LSOF, "-v"], capture_output=True, text=True, check=False
                ).stderr.splitlines()
                if "revision" in line
            ),
            "lsof",
        ),
        "psutil": psutil.__version__,
    }


def load_facts() -> dict[str, int]:
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    fds = 0
    for pid in pids:
        with contextlib.suppress(OSError):  # exited meanwhile
            fds += os.stat(f"/proc/{pid}/fd").st_size
    tcp_rows = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            tcp_rows += sum(1 for _ in f) - 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "processes": len(pids),
        "open_fds": fds,
        "tcp_rows": tcp_rows,
        "nofile_soft": soft,
        "nofile_hard": hard,
    }


# -- the run -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inventory", description=__doc__)
    parser.add_argument("--small", action="store_true", help="a quick, small scenario")
    parser.add_argument("--warm-runs", type=int, default=50)
    parser.add_argument("--poll-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("bench.inventory compares against ss and /proc: Linux only", file=sys.stderr)
        return 2

    scenario = Scenario()
    if args.small:
        scenario = Scenario(listener_children=10, preforked=2, idle_children=20, connections=500)
        args.poll_seconds = min(args.poll_seconds, 3.0)

    # Ctrl-C and SIGTERM unwind through `finally`, which ends every child by pid.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = "python -m bench.inventory" + (" --small" if args.small else "")
    try:
        started = time.monotonic()
        scenario.start()
        time.sleep(1.0)  # let the listeners accept every queued connection
        setup_s = time.monotonic() - started
        print(f"scenario ready in {setup_s:.1f} s", file=sys.stderr)
        report = measure(scenario, args.warm_runs, args.poll_seconds)
    finally:
        scenario.stop()
    print(render(command, scenario, report))
    # Speed targets are reported, not enforced (machines differ); a wrong answer fails the run.
    return 1 if report["engine_mismatch"] else 0


def measure(scenario: Scenario, warm_runs: int, poll_seconds: float) -> dict:
    facts = load_facts()
    timings: list[Timing] = []

    cold, _ = timed("snapshot() cold (new Inventory)", 5, lambda: Inventory().snapshot())
    engine = Inventory()
    engine.snapshot()
    counters_before = dict(engine.resolver.counters)
    warm, _ = timed("snapshot() warm", warm_runs, engine.snapshot)
    counters_after = engine.resolver.counters
    ours = from_snapshot(engine)
    readlinks_per_warm = (counters_after["readlinks"] - counters_before["readlinks"]) / warm_runs

    ss, ss_out = timed("ss -tulnp", 20, lambda: run_tool(["ss", "-tulnp"]))
    lsof, lsof_out = timed(
        "lsof -i -P -n -sTCP:LISTEN", 10, lambda: run_tool([LSOF, "-i", "-P", "-n", "-sTCP:LISTEN"])
    )
    ps, ps_out = timed("psutil.net_connections()", 10, lambda: psutil.net_connections(kind="inet"))
    fallback_engine = Inventory(backend="psutil")
    fallback_engine.snapshot()
    fallback, _ = timed("snapshot() warm, psutil backend", 10, fallback_engine.snapshot)
    cli, _ = timed(
        "python -m ports.inventory --json (new interpreter)",
        5,
        lambda: run_tool([sys.executable, "-m", "ports.inventory", "--json"]),
    )
    timings = [cold, warm, ss, lsof, ps, fallback, cli]

    def scenario_only(found: set[Key]) -> set[Key]:
        return {key for key in found if key[:3] in scenario.triples}

    # (tool, protocols it is asked for, what it found). `-sTCP:LISTEN` makes lsof drop UDP
    # sockets altogether (they have no TCP state), so lsof is compared on TCP only.
    results = [
        ("snapshot()", {"tcp", "udp"}, scenario_only(ours)),
        ("ss -tulnp", {"tcp", "udp"}, scenario_only(from_ss(ss_out))),
        ("lsof -i -P -n -sTCP:LISTEN (TCP only)", {"tcp"}, scenario_only(from_lsof(lsof_out))),
        ("psutil.net_connections", {"tcp", "udp"}, scenario_only(from_psutil(ps_out))),
    ]
    mismatches = {}
    for tool, protos, found in results:
        expected = {key for key in scenario.expected if key[0] in protos}
        mismatches[tool] = (len(expected - found), len(found - expected), len(expected))
    cpu_percent, polled = poll_cpu(poll_seconds, 0.25)
    timings.insert(2, polled)
    targets = {
        "warm <= ss/10": warm.median <= ss.median / 10,
        "cold <= ss": cold.median <= ss.median,
    }
    return {
        "facts": facts,
        "timings": timings,
        "cold": cold,
        "warm": warm,
        "ss": ss,
        "mismatches": mismatches,
        "engine_mismatch": mismatches["snapshot()"][:2] != (0, 0),
        "cpu_percent": cpu_percent,
        "polls": len(polled.runs_ms),
        "poll_seconds": poll_seconds,
        "readlinks_per_warm": readlinks_per_warm,
        "targets": targets,
        "targets_met": all(targets.values()),
    }


def render(command: str, scenario: Scenario, report: dict) -> str:
    facts = report["facts"]
    info = machine()
    warm, cold, ss = report["warm"], report["cold"], report["ss"]
    lines = [
        f"Command: `.venv/bin/{command}` (run from the repository root, as "
        f"{'root' if os.geteuid() == 0 else 'a normal user'}), "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Linux {info['kernel']}, "
        f"Python {info['python']}, psutil {info['psutil']}, {info['ss']}, {info['lsof']}.",
        "",
        f"Scenario: {len(scenario.triples)} listeners in {scenario.listener_children} processes "
        f"({scenario.preforked} of them pre-fork servers sharing every socket with a worker, "
        f"so {len(scenario.expected)} (socket, pid) pairs), {scenario.idle_children} idle "
        f"processes holding {scenario.established} established loopback connections. "
        f"Whole machine during the run: {facts['processes']} processes, "
        f"{facts['open_fds']} open fds, {facts['tcp_rows']} TCP sockets; RLIMIT_NOFILE "
        f"{facts['nofile_soft']}/{facts['nofile_hard']} (soft/hard).",
        "",
        "| tool | runs | median ms | p95 ms |",
        "|---|---:|---:|---:|",
    ]
    for timing in report["timings"]:
        lines.append(
            f"| {timing.name} | {len(timing.runs_ms)} | {timing.median:.2f} | {timing.p95:.2f} |"
        )
    lines += [
        "",
        f"- Warm snapshot / `ss -tulnp`: {warm.median / ss.median:.3f} "
        f"(1/{ss.median / warm.median:.0f}); target <= 1/10: "
        f"{'met' if report['targets']['warm <= ss/10'] else 'NOT met'}.",
        f"- Cold snapshot / `ss -tulnp`: {cold.median / ss.median:.2f}; target <= 1: "
        f"{'met' if report['targets']['cold <= ss'] else 'NOT met'}.",
        f"- Warm snapshots read {report['readlinks_per_warm']:.1f} fd links per poll on "
        f"average (the rolling 30 s rescan); a cold one reads every fd on the machine.",
        f"- Polling `snapshot()` every 250 ms for {report['poll_seconds']:.0f} s "
        f"({report['polls']} polls): {report['cpu_percent']:.2f}% of one core "
        f"(process CPU time / wall time).",
        "",
        "Agreement with the scenario's own record of (proto, address, port, pid), restricted to "
        "its sockets (missing / extra):",
        "",
    ]
    for tool, (missing, extra, expected) in report["mismatches"].items():
        note = ""
        if tool.startswith("psutil") and missing:
            note = " (psutil reports one pid per socket: the pre-fork workers are missing)"
        lines.append(f"- {tool}: {missing} missing, {extra} extra of {expected}{note}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
