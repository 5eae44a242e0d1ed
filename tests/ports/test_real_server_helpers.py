"""The real-server helpers keep their contract: each kind listens, and stopping it leaves nothing.

The server-tree tests (test_servers.py and others) rely on `running()` to start what a developer
runs and to end all of it; these tests check exactly that, on the real servers.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tests.ports.real_servers import KINDS, listening_inodes, read_process, running

RELEASE_DEADLINE_S = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _still_running(processes: list[tuple[int, int]]) -> list[int]:
    """The pids of `processes` (pid, start ticks) that are still those processes, not zombies."""
    left = []
    for pid, ticks in processes:
        proc = read_process(pid)
        if proc is not None and proc.start_ticks == ticks and proc.state != "Z":
            left.append(pid)
    return left


def _wait_released(port: int) -> None:
    deadline = time.monotonic() + RELEASE_DEADLINE_S
    while listening_inodes(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not listening_inodes(port), f"port {port} still listening after the server stopped"


@pytest.mark.parametrize("kind", KINDS)
def test_it_starts_each_kind_and_stops_all_of_it(kind: str, tmp_path: Path) -> None:
    port = _free_port()
    with running(kind, port, tmp_path=tmp_path) as server:
        server.wait_listening()
        # Holders first: a worker forked between the two reads is then in the tree, not missing.
        holders = server.holders()
        tree = server.tree()
        assert holders, f"{kind}: nothing holds port {port}"
        assert holders <= {proc.pid for proc in tree}, f"{kind}: a holder outside the tree"
        # A new session: the root leads a group that the whole tree is in.
        assert {proc.pgid for proc in tree} == {server.root_pid}
        started = [(proc.pid, proc.start_ticks) for proc in tree]
    _wait_released(port)
    assert _still_running(started) == []


def test_it_stops_a_server_started_in_the_callers_group(tmp_path: Path) -> None:
    port = _free_port()
    with running("flask-debug", port, new_session=False, tmp_path=tmp_path) as server:
        server.wait_listening()
        tree = server.tree()
        assert {proc.pgid for proc in tree} == {os.getpgid(0)}
        started = [(proc.pid, proc.start_ticks) for proc in tree]
    _wait_released(port)
    assert _still_running(started) == []


def test_it_refuses_an_unknown_kind(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="unknown server kind"),
        running("apache", 1, tmp_path=tmp_path),
    ):
        pass
