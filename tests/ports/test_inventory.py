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
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from ports import inventory
from ports.inventory import Inventory
from ports.inventory.records import ALL_INTERFACES, LOOPBACK, NETWORK, Snapshot, exposure_of
from tests.ports.inventory_helpers import BIND_AND_FORK, BIND_AND_SLEEP, REPO, find, inode_of, one

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux engine")


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
        listener = one(snap, "tcp", sock.getsockname()[1])
        assert (listener.family, listener.address, listener.exposure) == (family, address, exposure)
        assert listener.inode == inode_of(sock)
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
            listener = one(snap, "udp", sock.getsockname()[1])
            assert listener.family == family
            assert listener.inode == inode_of(sock)
            assert listener.pids == (os.getpid(),)
        assert one(snap, "udp", udp_any.getsockname()[1]).exposure == ALL_INTERFACES
        assert not find(snap, "udp", connected_udp.getsockname()[1])
        # Only the listening socket of the TCP pair, not either end of the connection.
        assert not find(snap, "tcp", client.getsockname()[1])
        assert [lst.inode for lst in snap.on_port(server.getsockname()[1])] == [inode_of(server)]
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
    listener = one(Inventory().snapshot(), "tcp", sock.getsockname()[1])
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
    assert find(engine.snapshot(), "tcp", port)
    sock.close()
    assert not find(engine.snapshot(), "tcp", port)


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
    from ports.inventory.psutil_backend import PsutilListeners

    port = sockets("tcp", "127.0.0.1").getsockname()[1]
    connections, _complete = PsutilListeners()._per_process_connections()
    mine = [c for c in connections if c.laddr and c.laddr.port == port]
    assert [(c.pid, c.status) for c in mine] == [(os.getpid(), psutil.CONN_LISTEN)]


# -- process details -------------------------------------------------------------------------------


def test_it_reports_cpu_since_the_previous_snapshot(sockets):
    sock = sockets("tcp", "127.0.0.1")
    port = sock.getsockname()[1]
    engine = Inventory()
    assert one(engine.snapshot(), "tcp", port).process.cpu_percent is None
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn some CPU so the share is clearly above zero
        pass
    cpu = one(engine.snapshot(), "tcp", port).process.cpu_percent
    assert cpu is not None and 0.0 < cpu <= 100.0 * os.cpu_count()


def test_it_refreshes_cpu_and_rss_at_most_once_a_second_and_keeps_records_meanwhile(sockets):
    sock = sockets("tcp", "127.0.0.1")
    port = sock.getsockname()[1]
    engine = Inventory(full_rescan_every=3600)
    engine.snapshot()
    second = one(engine.snapshot(), "tcp", port).process  # the second read: a CPU baseline
    assert second is not None and second.cpu_percent is not None

    def burn() -> None:
        deadline = time.process_time() + 0.05
        while time.process_time() < deadline:
            pass

    burn()
    engine.resolver.usage_max_age = 3600  # as if the polls came within the second
    assert one(engine.snapshot(), "tcp", port).process is second  # the same record, not re-read

    burn()
    engine.resolver.usage_max_age = 0  # the second has passed: the figures are read again
    fresh = one(engine.snapshot(), "tcp", port).process
    assert fresh is not second
    assert fresh.cpu_percent is not None and fresh.cpu_percent > 0.0
    assert (fresh.pid, fresh.create_time) == (second.pid, second.create_time)


def test_it_caps_long_command_lines(children):
    filler = "x" * 2000
    _proc, line = children.start(BIND_AND_SLEEP + "#" + filler, "tcp/127.0.0.1")
    _pid, port = map(int, line.split())
    listener = one(Inventory().snapshot(), "tcp", port)
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
    listener = one(Inventory().snapshot(), "tcp", int(match.group(1)))
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
        assert one(snap, "tcp", port).pids == (os.getpid(),)


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
