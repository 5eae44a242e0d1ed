"""The inventory engine against real sockets and real child processes (loopback traffic only).

Every process these tests start is ended by its own pid; a forked grandchild is ended only while
its start time still matches, so a reused pid is never signalled. Children also ask the kernel to
kill them when their parent dies, so a crashed test run leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from ports import inventory, procinfo
from ports.inventory import Inventory
from ports.records import ALL_INTERFACES, LOOPBACK, NETWORK, Listener, Snapshot, exposure_of

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux engine")

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
    stat = procinfo.read_stat(pid)
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


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.end_all()


@pytest.fixture
def sockets() -> Iterator[Callable[..., socket.socket]]:
    opened: list[socket.socket] = []

    def open_socket(proto: str, host: str, *, v6only: bool | None = None) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        opened.append(sock)
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind((host, 0))
        if proto == "tcp":
            sock.listen()
        return sock

    try:
        yield open_socket
    finally:
        for sock in opened:
            sock.close()


def _inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def _find(snap: Snapshot, proto: str, port: int, address: str | None = None) -> list[Listener]:
    return [
        listener
        for listener in snap.listeners
        if listener.proto == proto
        and listener.port == port
        and (address is None or listener.address == address)
    ]


def _one(snap: Snapshot, proto: str, port: int, address: str | None = None) -> Listener:
    found = _find(snap, proto, port, address)
    assert len(found) == 1, f"{proto} {address}:{port}: {found}"
    return found[0]


# -- what is listed --------------------------------------------------------------------------------


def test_it_lists_tcp_listeners_on_loopback_and_all_interfaces(sockets):
    cases = [
        (sockets("tcp", "127.0.0.1"), "ipv4", "127.0.0.1", LOOPBACK),
        (sockets("tcp", "::1"), "ipv6", "::1", LOOPBACK),
        (sockets("tcp", "0.0.0.0"), "ipv4", "0.0.0.0", ALL_INTERFACES),
        (sockets("tcp", "::", v6only=False), "ipv6", "::", ALL_INTERFACES),
        (sockets("tcp", "::ffff:127.0.0.1"), "ipv6", "::ffff:127.0.0.1", LOOPBACK),
    ]
    snap = Inventory().snapshot()

    assert snap.listeners == tuple(sorted(snap.listeners, key=lambda lst: lst.port))
    me = psutil.Process()
    for sock, family, address, exposure in cases:
        listener = _one(snap, "tcp", sock.getsockname()[1])
        assert (listener.family, listener.address, listener.exposure) == (family, address, exposure)
        assert listener.inode == _inode(sock)
        assert listener.uid == os.getuid()
        assert listener.pids == (os.getpid(),)
        assert listener.process is not None
        assert listener.process.pid == os.getpid()
        assert listener.process.name == me.name()
        assert listener.process.user == pwd.getpwuid(os.getuid()).pw_name
        assert listener.process.cmdline == " ".join(me.cmdline())[: inventory.CMDLINE_MAX]
        assert listener.process.cwd == os.getcwd()
        assert listener.process.create_time == round(me.create_time(), 2)
        assert listener.process.ppid == os.getppid()
        assert listener.process.rss and listener.process.rss > 1_000_000


def test_it_lists_bound_udp_but_not_connected_udp_or_tcp_connections(sockets):
    udp4 = sockets("udp", "127.0.0.1")
    udp6 = sockets("udp", "::1")
    udp_any = sockets("udp", "0.0.0.0")
    connected_udp = sockets("udp", "127.0.0.1")
    connected_udp.connect(("127.0.0.1", udp4.getsockname()[1]))
    server = sockets("tcp", "127.0.0.1")
    client = socket.create_connection(server.getsockname()[:2])
    accepted, _ = server.accept()
    try:
        snap = Inventory().snapshot()
        for sock, family in ((udp4, "ipv4"), (udp6, "ipv6"), (udp_any, "ipv4")):
            listener = _one(snap, "udp", sock.getsockname()[1])
            assert listener.family == family
            assert listener.inode == _inode(sock)
            assert listener.pids == (os.getpid(),)
        assert _one(snap, "udp", udp_any.getsockname()[1]).exposure == ALL_INTERFACES
        assert not _find(snap, "udp", connected_udp.getsockname()[1])
        # Only the listening socket of the TCP pair, not either end of the connection.
        assert not _find(snap, "tcp", client.getsockname()[1])
        assert [lst.inode for lst in snap.on_port(server.getsockname()[1])] == [_inode(server)]
    finally:
        client.close()
        accepted.close()


def test_it_calls_a_specific_non_loopback_address_network_exposure(sockets):
    addresses = [
        snic.address
        for snics in psutil.net_if_addrs().values()
        for snic in snics
        if snic.family == socket.AF_INET and not snic.address.startswith("127.")
    ]
    if not addresses:
        pytest.skip("no non-loopback IPv4 address on this machine")
    sock = sockets("tcp", addresses[0])
    listener = _one(Inventory().snapshot(), "tcp", sock.getsockname()[1])
    assert (listener.address, listener.exposure) == (addresses[0], NETWORK)


def test_it_classifies_addresses_by_who_can_reach_them():
    assert exposure_of("127.0.0.53") == LOOPBACK
    assert exposure_of("::ffff:127.0.0.1") == LOOPBACK
    assert exposure_of("0.0.0.0") == ALL_INTERFACES
    assert exposure_of("::") == ALL_INTERFACES
    assert exposure_of("192.168.1.20") == NETWORK
    assert exposure_of("fe80::1%eth0") == NETWORK


def test_it_forgets_a_socket_once_it_is_closed(sockets):
    engine = Inventory()
    sock = sockets("tcp", "127.0.0.1")
    port = sock.getsockname()[1]
    assert _find(engine.snapshot(), "tcp", port)
    sock.close()
    assert not _find(engine.snapshot(), "tcp", port)


# -- owners under churn ----------------------------------------------------------------------------


def test_it_keeps_owners_right_as_children_come_and_go(children):
    engine = Inventory()
    engine.snapshot()
    first_pid, (first_port,) = children.bind("tcp/127.0.0.1")
    snap = engine.snapshot()
    assert _one(snap, "tcp", first_port).pids == (first_pid,)

    second_pid, (second_tcp, second_udp) = children.bind("tcp/::1", "udp/127.0.0.1")
    snap = engine.snapshot()
    assert _one(snap, "tcp", first_port).pids == (first_pid,)
    assert _one(snap, "tcp", second_tcp).pids == (second_pid,)
    assert _one(snap, "udp", second_udp).pids == (second_pid,)
    assert _one(snap, "tcp", second_tcp).process.cmdline.startswith(sys.executable)

    children.end(children.popens[0])
    snap = engine.snapshot()
    assert not _find(snap, "tcp", first_port)
    assert _one(snap, "tcp", second_tcp).pids == (second_pid,)

    third_pid, (third_port,) = children.bind("tcp/0.0.0.0")
    snap = engine.snapshot()
    assert _one(snap, "tcp", third_port).pids == (third_pid,)
    # All of it came from incremental reads: the only full scan is the first snapshot's.
    assert engine.resolver.counters["full_scans"] == 1


def test_it_shows_both_holders_of_a_socket_shared_by_fork(children):
    engine = Inventory()
    engine.snapshot()
    proc, line = children.start(BIND_AND_FORK)
    parent, child, port = map(int, line.split())
    children.adopt_forked(child)

    listener = _one(engine.snapshot(), "tcp", port)
    assert listener.pids == (parent, child)  # oldest first: the parent that bound it
    assert listener.process.pid == parent

    # The parent exits: the forked child alone holds the socket now.
    children.end(proc)
    listener = _one(engine.snapshot(), "tcp", port)
    assert listener.pids == (child,)
    assert listener.process.pid == child


def _hand_over(children: Children, engine: Inventory, sockets, mode: str) -> tuple[int, int]:
    """Open a listener here, hand it to a child over SCM_RIGHTS, close ours: (receiver, port)."""
    ours, theirs = socket.socketpair()
    try:
        _proc, line = children.start(
            RECEIVE_FDS, mode, str(theirs.fileno()), pass_fds=(theirs.fileno(),)
        )
    finally:
        theirs.close()
    receiver = int(line)
    listener_sock = sockets("tcp", "127.0.0.1")
    port = listener_sock.getsockname()[1]
    assert _one(engine.snapshot(), "tcp", port).pids == (os.getpid(),)
    socket.send_fds(ours, [b"x"], [listener_sock.fileno()])
    assert ours.recv(2) == b"ok"
    listener_sock.close()
    ours.close()
    return receiver, port


def test_it_follows_a_socket_handed_to_another_process(children, sockets):
    engine = Inventory()
    receiver, port = _hand_over(children, engine, sockets, "plain")

    listener = _one(engine.snapshot(), "tcp", port)
    assert listener.pids == (receiver,)
    assert listener.process.pid == receiver
    # Found through the receiver's changed fd count, not by scanning everything again.
    assert engine.resolver.counters["full_scans"] == 1


def test_it_finds_a_hand_off_that_no_fd_count_shows_with_a_full_scan(children, sockets):
    # The receiver closes a spare fd for the one it gets: its fd count does not move. Only a scan
    # of every process finds the new owner, and that scan is rate-limited.
    engine = Inventory(full_rescan_every=3600, fallback_scan_every=3600)
    receiver, port = _hand_over(children, engine, sockets, "swap")

    snap = engine.snapshot()
    listener = _one(snap, "tcp", port)  # not found yet, and still listed, owner unknown
    assert (listener.pids, listener.process, listener.uid) == ((), None, os.getuid())
    assert snap.complete is False

    engine.resolver.fallback_scan_every = 0  # the rate limit has passed
    snap = engine.snapshot()
    assert _one(snap, "tcp", port).pids == (receiver,)
    assert engine.resolver.counters["full_scans"] == 2


def test_it_notices_a_reused_pid(children):
    """A pid that exits and comes back as another process gets that process's details."""
    engine = Inventory()
    engine.snapshot()
    first, line = children.start("#first" + BIND_AND_SLEEP, "tcp/127.0.0.1")
    first_port = int(line.split()[1])
    before = _one(engine.snapshot(), "tcp", first_port)
    assert " -c #first\n" in before.process.cmdline
    children.end(first)

    for _attempt in range(20):
        # Ask for the same pid again; another fork on the machine may get there first.
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(first.pid - 1))
        except OSError:
            pytest.skip("cannot choose the next pid here (/proc/sys/kernel/ns_last_pid)")
        second, line = children.start("#second" + BIND_AND_SLEEP, "tcp/127.0.0.1")
        if second.pid == first.pid:
            break
        children.end(second)
    else:
        pytest.skip("could not get the pid reused")
    second_port = int(line.split()[1])

    snap = engine.snapshot()
    assert not _find(snap, "tcp", first_port)
    after = _one(snap, "tcp", second_port)
    assert after.pids == (first.pid,)
    assert " -c #second\n" in after.process.cmdline
    assert after.process.create_time >= before.process.create_time
    assert after.process.cpu_percent is None  # a new process: no baseline from the old one


def test_it_keeps_a_socket_whose_owner_it_cannot_read(sockets):
    """Run the engine as `nobody`: it can list root's socket but not read root's fd table."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start the engine as another user")
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 that `nobody` may execute")
    sock = sockets("tcp", "127.0.0.1")
    port = sock.getsockname()[1]
    # Two polls: the second must not search again for what the first full scan could not place.
    script = (
        "import json; from ports.inventory import Inventory, as_json\n"
        "engine = Inventory(backend='netlink'); engine.snapshot(); snap = engine.snapshot()\n"
        f"print(json.dumps({{'complete': snap.complete, 'mine': [as_json(x) for x in"
        f" snap.listeners if x.port == {port}], 'counters': engine.resolver.counters}}))\n"
    )
    result = subprocess.run(
        [python, "-c", script],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
        user="nobody",
        group=pwd.getpwnam("nobody").pw_gid,
        extra_groups=[],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["complete"] is False
    [listener] = seen["mine"]
    assert (listener["pids"], listener["pid"], listener["process"]) == ([], None, None)
    assert listener["uid"] == 0  # the kernel still says whose socket it is
    assert listener["inode"] == _inode(sock)
    assert seen["counters"]["full_scans"] == 1


# -- agreement with other tools --------------------------------------------------------------------

_SS_USERS = re.compile(r"pid=(\d+)")


def _ss_listeners() -> dict[tuple[str, str, int], list[int]]:
    out = subprocess.run(["ss", "-tulnpH"], capture_output=True, text=True, check=True).stdout
    found: dict[tuple[str, str, int], list[int]] = {}
    for line in out.splitlines():
        fields = line.split()
        proto, local = fields[0], fields[4]
        address, port = local.rsplit(":", 1)
        address = address.strip("[]").split("%", 1)[0]
        # ss prints a dual-stack IPv6 wildcard as "*" (and a v6-only one as "[::]").
        address = "::" if address == "*" else address
        found[(proto, address, int(port))] = sorted(map(int, _SS_USERS.findall(line)))
    return found


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_it_matches_ss_for_the_same_sockets(sockets, children):
    mine = [
        sockets("tcp", "127.0.0.1"),
        sockets("tcp", "::1"),
        sockets("tcp", "::", v6only=False),
        sockets("tcp", "::", v6only=True),
        sockets("udp", "0.0.0.0"),
        sockets("udp", "::1"),
    ]
    wanted = {("tcp" if s.type == socket.SOCK_STREAM else "udp", s.getsockname()[1]) for s in mine}
    _proc, line = children.start(BIND_AND_FORK)
    parent, child, shared_port = map(int, line.split())
    children.adopt_forked(child)
    wanted.add(("tcp", shared_port))
    _pid, ports = children.bind("tcp/0.0.0.0", "udp/::")
    wanted |= {("tcp", ports[0]), ("udp", ports[1])}

    snap = Inventory().snapshot()
    ss = _ss_listeners()

    ours = {
        (lst.proto, lst.address.split("%", 1)[0], lst.port): sorted(lst.pids)
        for lst in snap.listeners
        if (lst.proto, lst.port) in wanted
    }
    theirs = {key: pids for key, pids in ss.items() if (key[0], key[2]) in wanted}
    assert len(ours) == len(wanted) == 9
    assert ours == theirs
    assert ours[("tcp", "127.0.0.1", shared_port)] == sorted([parent, child])


def test_it_gives_the_same_records_through_the_psutil_backend(sockets, children):
    mine = [sockets("tcp", "127.0.0.1"), sockets("tcp", "::1"), sockets("udp", "0.0.0.0")]
    _proc, line = children.start(BIND_AND_FORK)
    parent, child, shared_port = map(int, line.split())
    children.adopt_forked(child)
    _pid, child_ports = children.bind("tcp/0.0.0.0", "udp/::1")
    ports = {s.getsockname()[1] for s in mine} | {shared_port, *child_ports}

    fast = {lst.key[:4]: lst for lst in Inventory("netlink").snapshot().listeners}
    portable_engine = Inventory(backend="psutil")
    assert portable_engine.backend == "psutil"
    portable = {lst.key[:4]: lst for lst in portable_engine.snapshot().listeners}

    fast = {key: lst for key, lst in fast.items() if key[3] in ports}
    portable = {key: lst for key, lst in portable.items() if key[3] in ports}
    assert set(fast) == set(portable) and len(fast) == 6
    for key, lst in portable.items():
        other = fast[key]
        assert lst.exposure == other.exposure
        assert lst.uid == other.uid
        assert lst.inode == 0  # psutil does not report inodes
        # psutil on Linux reports one holder per socket; it must be one of ours.
        assert set(lst.pids) <= set(other.pids) and lst.pids
        assert lst.process is not None and other.process is not None
        if lst.pids[0] == other.pids[0]:
            for name in ("pid", "name", "user", "cmdline", "cwd", "create_time", "ppid"):
                assert getattr(lst.process, name) == getattr(other.process, name), name
        assert lst.service == other.service
    assert fast[("tcp", "ipv4", "127.0.0.1", shared_port)].pids == (parent, child)


def test_it_walks_processes_when_psutil_may_not_list_every_socket(sockets):
    # macOS refuses psutil.net_connections() to non-root users; the backend then asks each
    # process. Exercise that path here for real: it must find the same socket and holder.
    from ports.psutil_listeners import PsutilListeners

    port = sockets("tcp", "127.0.0.1").getsockname()[1]
    connections, _complete = PsutilListeners()._per_process_connections()
    mine = [c for c in connections if c.laddr and c.laddr.port == port]
    assert [(c.pid, c.status) for c in mine] == [(os.getpid(), psutil.CONN_LISTEN)]


# -- process details -------------------------------------------------------------------------------


def test_it_reports_cpu_since_the_previous_snapshot(sockets):
    sock = sockets("tcp", "127.0.0.1")
    port = sock.getsockname()[1]
    engine = Inventory()
    assert _one(engine.snapshot(), "tcp", port).process.cpu_percent is None
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn some CPU so the share is clearly above zero
        pass
    cpu = _one(engine.snapshot(), "tcp", port).process.cpu_percent
    assert cpu is not None and 0.0 < cpu <= 100.0 * os.cpu_count()


def test_it_caps_long_command_lines(children):
    filler = "x" * 2000
    _proc, line = children.start(BIND_AND_SLEEP + "#" + filler, "tcp/127.0.0.1")
    _pid, port = map(int, line.split())
    listener = _one(Inventory().snapshot(), "tcp", port)
    assert len(listener.process.cmdline) == inventory.CMDLINE_MAX
    assert listener.process.cmdline.startswith(sys.executable)


def test_it_reads_one_process_fresh(children):
    proc, line = children.start(BIND_AND_SLEEP, "tcp/127.0.0.1")
    pid = int(line.split()[0])
    info = inventory.process_info(pid)
    assert info is not None
    assert info.pid == pid
    assert info.create_time == round(psutil.Process(pid).create_time(), 2)
    assert info.ppid == os.getpid()
    assert Inventory("psutil").process_info(pid).create_time == info.create_time
    children.end(proc)
    assert inventory.process_info(pid) is None


def test_it_hints_the_service_from_the_command_line(children):
    # A real `python -m http.server`; the fixture ends it by its pid.
    proc, line = children.run(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"]
    )
    match = re.search(r"port (\d+)", line)
    assert match, "http.server did not start"
    listener = _one(Inventory().snapshot(), "tcp", int(match.group(1)))
    assert listener.pids == (proc.pid,)
    assert listener.service == "Python http.server"


# -- entry points ----------------------------------------------------------------------------------


def test_it_shares_one_engine_between_threads(sockets):
    port = sockets("tcp", "127.0.0.1").getsockname()[1]
    results: list[Snapshot] = []
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            for _ in range(5):
                results.append(inventory.snapshot())
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 20
    assert inventory.default_inventory() is inventory.default_inventory()
    for snap in results:
        assert _one(snap, "tcp", port).pids == (os.getpid(),)


def test_it_prints_json_records(sockets, capsys):
    port = sockets("tcp", "::1").getsockname()[1]
    assert inventory.main(["--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    [mine] = [record for record in records if record["port"] == port]
    assert mine["pid"] == os.getpid()
    assert mine["pids"] == [os.getpid()]
    assert mine["family"] == "ipv6"
    assert mine["exposure"] == LOOPBACK
    assert mine["process"]["name"] == psutil.Process().name()


def test_it_prints_a_readable_table(sockets):
    port = sockets("tcp", "127.0.0.1").getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "ports.inventory"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines = result.stdout.splitlines()
    assert (
        " ".join(lines[0].split())
        == "PROTO ADDRESS PORT EXPOSURE PID(S) USER PROCESS SERVICE COMMAND"
    )
    [row] = [line for line in lines if re.search(rf"\s{port}\s", line)]
    assert row.split()[:5] == ["tcp", "127.0.0.1", str(port), "loopback", str(os.getpid())]
    assert re.match(r"\d+ listeners in [\d.]+ ms", lines[-1])
