"""The inventory's owners under churn: children come and go, fork, hand sockets over, reuse pids.

Every process these tests start is ended by its own pid (see inventory_helpers.Children).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time

import pytest

from ports.inventory import Inventory
from tests.ports.inventory_helpers import (
    BIND_AND_FORK,
    BIND_AND_SLEEP,
    RECEIVE_FDS,
    REPO,
    Children,
    find,
    inode_of,
    one,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux engine")


# -- owners under churn ----------------------------------------------------------------------------


def test_it_keeps_owners_right_as_children_come_and_go(children):
    engine = Inventory()
    engine.snapshot()
    first_pid, (first_port,) = children.bind("tcp/127.0.0.1")
    snap = engine.snapshot()
    assert one(snap, "tcp", first_port).pids == (first_pid,)

    second_pid, (second_tcp, second_udp) = children.bind("tcp/::1", "udp/127.0.0.1")
    snap = engine.snapshot()
    assert one(snap, "tcp", first_port).pids == (first_pid,)
    assert one(snap, "tcp", second_tcp).pids == (second_pid,)
    assert one(snap, "udp", second_udp).pids == (second_pid,)
    assert one(snap, "tcp", second_tcp).process.cmdline.startswith(sys.executable)

    children.end(children.popens[0])
    snap = engine.snapshot()
    assert not find(snap, "tcp", first_port)
    assert one(snap, "tcp", second_tcp).pids == (second_pid,)

    third_pid, (third_port,) = children.bind("tcp/0.0.0.0")
    snap = engine.snapshot()
    assert one(snap, "tcp", third_port).pids == (third_pid,)
    # All of it came from incremental reads: the only full scan is the first snapshot's.
    assert engine.resolver.counters["full_scans"] == 1


def test_it_shows_both_holders_of_a_socket_shared_by_fork(children):
    engine = Inventory()
    engine.snapshot()
    proc, line = children.start(BIND_AND_FORK)
    parent, child, port = map(int, line.split())
    children.adopt_forked(child)

    listener = one(engine.snapshot(), "tcp", port)
    assert listener.pids == (parent, child)  # oldest first: the parent that bound it
    assert listener.process.pid == parent

    # The parent exits: the forked child alone holds the socket now.
    children.end(proc)
    listener = one(engine.snapshot(), "tcp", port)
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
    assert one(engine.snapshot(), "tcp", port).pids == (os.getpid(),)
    socket.send_fds(ours, [b"x"], [listener_sock.fileno()])
    assert ours.recv(2) == b"ok"
    listener_sock.close()
    ours.close()
    return receiver, port


def test_it_follows_a_socket_handed_to_another_process(children, sockets):
    engine = Inventory()
    receiver, port = _hand_over(children, engine, sockets, "plain")

    listener = one(engine.snapshot(), "tcp", port)
    assert listener.pids == (receiver,)
    assert listener.process.pid == receiver
    # Found through the receiver's changed fd count, not by scanning everything again.
    assert engine.resolver.counters["full_scans"] == 1


def test_it_finds_a_hand_off_that_no_fd_count_shows_among_what_ran(children, sockets):
    # The receiver closes a spare fd for the one it gets: its fd count does not move. It ran to
    # do so, so the search for the listener's owner reads the processes that ran since they
    # were read, in the same poll and without a scan of every process.
    engine = Inventory(full_rescan_every=3600, fallback_scan_every=3600)
    receiver, port = _hand_over(children, engine, sockets, "swap")

    snap = engine.snapshot()
    assert one(snap, "tcp", port).pids == (receiver,)
    assert engine.resolver.counters["full_scans"] == 1  # the first poll's only


def test_the_rolling_rescan_finds_a_second_holder_and_skips_sleeping_processes(children, sockets):
    # We keep the listener and hand a copy over; the receiver closes a spare fd for it. Nothing
    # is left unowned and no fd count moves: only the rolling rescan can find the second holder.
    engine = Inventory(full_rescan_every=0.3, fallback_scan_every=3600)
    sleeper, _ports = children.bind("tcp/127.0.0.1")
    ours, theirs = socket.socketpair()
    try:
        _proc, line = children.start(
            RECEIVE_FDS, "swap", str(theirs.fileno()), pass_fds=(theirs.fileno(),)
        )
    finally:
        theirs.close()
    receiver = int(line)
    listener_sock = sockets("tcp", "127.0.0.1")
    port = listener_sock.getsockname()[1]
    assert one(engine.snapshot(), "tcp", port).pids == (os.getpid(),)
    socket.send_fds(ours, [b"x"], [listener_sock.fileno()])
    assert ours.recv(2) == b"ok"
    ours.close()

    deadline = time.monotonic() + 5
    while one(engine.snapshot(), "tcp", port).pids != (os.getpid(), receiver):
        assert time.monotonic() < deadline, "the rolling rescan never found the second holder"
        time.sleep(0.05)
    # The sleeping child ran nothing since it was read: its fd links were not read again.
    counters = engine.resolver.counters
    assert counters["rolling_skips"] > 0 and counters["full_scans"] == 1
    assert sleeper in engine.resolver._activity


def test_it_notices_a_reused_pid(children):
    """A pid that exits and comes back as another process gets that process's details."""
    engine = Inventory()
    engine.snapshot()
    first, line = children.start("#first" + BIND_AND_SLEEP, "tcp/127.0.0.1")
    first_port = int(line.split()[1])
    before = one(engine.snapshot(), "tcp", first_port)
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
    assert not find(snap, "tcp", first_port)
    after = one(snap, "tcp", second_port)
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
    assert listener["inode"] == inode_of(sock)
    assert seen["counters"]["full_scans"] == 1
