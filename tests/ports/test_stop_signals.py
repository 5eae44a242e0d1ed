"""What a stop sends, to whom, and how many times, on real process trees made for the test.

A server that leads its own group gets one TERM to the group, as Ctrl-C sends: each process of
it, and a double-forked one that left the tree but not the group, is told once. A second TERM
makes some servers (uvicorn) skip their graceful shutdown. A server that ignores TERM is killed
only when the stop escalates, and the answer says which signals went out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from ports import server_stopping
from ports.errors import StaleTarget
from tests.conftest import wait_until

# Root (leads its own session and group) -> child A (holds the socket too) and B -> G, after
# which B exits: G is an orphan still in the root's group, holding nothing. Each records every
# TERM it receives and exits 0.3 s after the first, so that a second TERM would be recorded.
TREE = textwrap.dedent(
    """
    import os, signal, socket, sys, time
    log = sys.argv[1]
    def on_term(signum, frame):
        with open(log, "a") as out:
            out.write(f"{os.getpid()}\\n")
        time.sleep(0.3)
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    child = os.fork()
    if child == 0:
        while True:
            signal.pause()
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        orphan = os.fork()
        if orphan == 0:
            s.close()
            while True:
                signal.pause()
        os.write(write, f"{orphan}".encode())
        os._exit(0)
    os.waitpid(middle, 0)
    orphan = int(os.read(read, 32))
    print(s.getsockname()[1], child, orphan, flush=True)
    while True:
        signal.pause()
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def group_server(tmp_path: Path):
    log = tmp_path / "terms.log"
    log.touch()
    root = subprocess.Popen(
        [sys.executable, "-c", TREE, str(log)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    port, child, orphan = (int(word) for word in root.stdout.readline().split())
    pids = [root.pid, child, orphan]
    try:
        yield root, port, pids, log
    finally:
        for pid in pids:  # every process this test made, by its pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        root.wait(timeout=10)


def _create_time(pid: int) -> float:
    from ports import inventory

    info = inventory.process_info(pid)
    assert info is not None
    return info.create_time


def _holders_seen(port: int, count: int) -> None:
    from ports import inventory

    def seen() -> bool:
        return any(len(listener.pids) >= count for listener in inventory.snapshot().on_port(port))

    assert wait_until(seen, timeout=20), f"port {port} never showed {count} holders"


def test_a_group_leading_server_gets_one_term_each_even_its_orphaned_member(group_server):
    root, port, pids, log = group_server
    _holders_seen(port, 2)
    result = server_stopping.stop_server(port, root.pid, _create_time(root.pid), grace_seconds=15)
    assert result.signals_sent == ["TERM"]
    assert result.outcome == "stopped" and result.released
    # The plan names the group's orphan too: it is pinned and waited for like the tree.
    assert {step.pid for step in result.plan} == set(pids)
    assert wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=15)
    told = [int(line) for line in log.read_text().split()]
    assert sorted(told) == sorted(pids), "each process told exactly once"


def test_a_server_ignoring_term_is_killed_only_when_the_stop_escalates(listening_child):
    child = listening_child(ignore_term=True)
    polite = server_stopping.stop_server(
        child.port, child.pid, child.create_time(), grace_seconds=0.5
    )
    assert polite.signals_sent == ["TERM"]
    assert polite.outcome == "still-running" and not polite.released
    assert child.process.poll() is None

    forced = server_stopping.stop_server(
        child.port, child.pid, child.create_time(), grace_seconds=0.5, escalate=True
    )
    assert forced.signals_sent == ["TERM", "KILL"]
    assert forced.outcome == "killed" and forced.released
    assert wait_until(lambda: not _alive(child.pid), timeout=15)


def _server_and_plan(child):
    from ports import inventory

    def snapshot():
        return inventory.snapshot()

    server, listeners, _others = server_stopping.find_server(
        child.port,
        child.pid,
        child.create_time(),
        snapshot_fn=snapshot,
        servers_fn=inventory.servers_of,
    )
    return server, server_stopping.plan_for(server, listeners)


def test_a_root_whose_start_time_changed_is_not_signalled(listening_child):
    """Between the plan and the signal the pid was reused: a different process now."""
    child = listening_child()
    server, plan = _server_and_plan(child)
    reused = replace(server, create_time=server.create_time - 100)
    with pytest.raises(StaleTarget, match=f"pid {child.pid} exited before it could be signalled"):
        server_stopping._signal_tree(reused, plan, 1.0, escalate=True)
    assert child.process.poll() is None


def test_a_root_that_exited_before_the_signal_is_reported_so(listening_child):
    child = listening_child()
    server, plan = _server_and_plan(child)
    child.process.kill()
    child.process.wait(timeout=10)
    with pytest.raises(StaleTarget, match=f"pid {child.pid} exited before it could be signalled"):
        server_stopping._signal_tree(server, plan, 1.0, escalate=False)


def test_a_short_grace_still_waits_for_a_server_that_exits_at_once(listening_child):
    child = listening_child()
    result = server_stopping.stop_server(
        child.port, child.pid, child.create_time(), grace_seconds=1.0
    )
    assert result.outcome == "stopped" and result.released and result.signals_sent == ["TERM"]
