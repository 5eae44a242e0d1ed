"""Child processes and sockets for the inventory tests (see test_inventory*.py).

Every process started here is ended by its own pid; a forked grandchild is ended only while its
start time still matches, so a reused pid is never signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ports.inventory import processes
from ports.inventory.records import Listener, Snapshot

REPO = Path(__file__).resolve().parents[2]

# Dies with its parent (PR_SET_PDEATHSIG), so nothing outlives a crashed test run.
_PREAMBLE = """
import ctypes, os, socket, sys, time
ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
def bind(spec):
    proto, host = spec.split("/", 1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    sock.bind((host, 0))
    if proto == "tcp":
        sock.listen()
    return sock
"""

# argv: "tcp/127.0.0.1" ... -> prints "pid port port ..." once bound, then sleeps.
BIND_AND_SLEEP = (
    _PREAMBLE
    + """
socks = [bind(spec) for spec in sys.argv[1:]]
print(os.getpid(), *(s.getsockname()[1] for s in socks), flush=True)
time.sleep(120)
"""
)

# Binds one TCP listener, forks a child that keeps it too: prints "parent_pid child_pid port".
BIND_AND_FORK = (
    _PREAMBLE
    + """
sock = bind("tcp/127.0.0.1")
child = os.fork()
if child == 0:
    # No PDEATHSIG here: tests end the parent and watch this child keep the socket. It exits by
    # itself after a minute, and the fixture ends it by pid before that.
    time.sleep(60)
    os._exit(0)
print(os.getpid(), child, sock.getsockname()[1], flush=True)
time.sleep(120)
"""
)

# Receives fds over the unix socket inherited as fd argv[2] and keeps them; with argv[1] == "swap"
# it closes a spare fd for the one it receives, so its open-fd count does not change.
RECEIVE_FDS = (
    _PREAMBLE
    + """
channel = socket.socket(fileno=int(sys.argv[2]))
spare = os.open(os.devnull, os.O_RDONLY)
print(os.getpid(), flush=True)
kept = []
while True:
    msg, fds, flags, addr = socket.recv_fds(channel, 16, 4)
    if not msg:
        time.sleep(120)
    kept.extend(fds)
    if sys.argv[1] == "swap":
        os.close(spare)
    channel.send(b"ok")
"""
)


def _start_ticks(pid: int) -> int | None:
    stat = processes.read_stat(pid)
    return stat.start_ticks if stat else None


@dataclass
class Children:
    """Processes started by one test, each ended by pid at teardown."""

    popens: list[subprocess.Popen[str]] = field(default_factory=list)
    forked: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, start ticks)

    def start(self, code: str, *args: str, **popen: object) -> tuple[subprocess.Popen[str], str]:
        """`python -c code args...`; returns once it printed its first line."""
        return self.run([sys.executable, "-c", code, *args], **popen)

    def run(self, argv: list[str], **popen: object) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **popen)
        self.popens.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line, f"child {proc.pid} exited before it was ready"
        return proc, line

    def bind(self, *specs: str) -> tuple[int, list[int]]:
        """A child listening on each spec ("tcp/127.0.0.1"); returns (pid, ports)."""
        _proc, line = self.start(BIND_AND_SLEEP, *specs)
        pid, *ports = map(int, line.split())
        return pid, ports

    def adopt_forked(self, pid: int) -> None:
        self.forked.append((pid, _start_ticks(pid)))

    def end(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()

    def end_all(self) -> None:
        for pid, start in self.forked:
            # A grandchild is not ours to wait for; signal it only if it is still the same process.
            if start is not None and _start_ticks(pid) == start:
                os.kill(pid, signal.SIGKILL)
        for proc in self.popens:
            self.end(proc)


def inode_of(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def find(snap: Snapshot, proto: str, port: int, address: str | None = None) -> list[Listener]:
    return [
        listener
        for listener in snap.listeners
        if listener.proto == proto
        and listener.port == port
        and (address is None or listener.address == address)
    ]


def one(snap: Snapshot, proto: str, port: int, address: str | None = None) -> Listener:
    found = find(snap, proto, port, address)
    assert len(found) == 1, f"{proto} {address}:{port}: {found}"
    return found[0]
