"""A stop that finds the port held again says who holds it and that something restarted it.

A real respawner races the stop's release check (it may bind a moment after the check looked),
so the new holder is staged through the snapshot seam: the real listing until the stopped
server has exited, then that listing plus a socket on the same port held by another process
this test started. The stopped server is real and really stopped."""

from __future__ import annotations

import dataclasses

from ports import inventory, server_stopping
from ports.inventory.records import Holder, Listener


def test_a_server_restarted_behind_the_stop_is_named_and_the_port_is_not_released(
    listening_child,
):
    server, watcher = listening_child(), listening_child()

    def staged():
        snapshot = inventory.snapshot()
        if server.process.poll() is None:
            return snapshot
        again = Listener(
            "tcp",
            "ipv4",
            "127.0.0.1",
            server.port,
            inode=1,  # a socket the stop never saw
            uid=0,
            pids=(watcher.pid,),
            holders=(Holder(watcher.pid, None, "python", "python", None, "process"),),
        )
        return dataclasses.replace(snapshot, listeners=(*snapshot.listeners, again))

    result = server_stopping.stop_server(
        server.port, server.pid, server.create_time(), grace_seconds=5, snapshot_fn=staged
    )
    assert result.outcome == "stopped" and server.process.poll() is not None
    assert result.released is False
    assert result.respawned == [{"pid": watcher.pid, "name": "python"}]
    assert (
        f"port {server.port} is held again by pid {watcher.pid} (python): something restarted it"
        in result.warnings
    )
    assert result.as_dict()["respawned"] == result.respawned


def test_a_server_that_ignores_term_is_still_running_and_the_answer_says_how_to_finish(
    listening_child,
):
    server = listening_child(ignore_term=True)
    result = server_stopping.stop_server(
        server.port, server.pid, server.create_time(), grace_seconds=0.3
    )
    assert result.outcome == "still-running" and server.process.poll() is None
    assert result.released is False and result.respawned == []
    assert "still running after 0.3 s: stop again with escalate to send KILL" in result.warnings
