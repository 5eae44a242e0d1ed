"""Stopping a managed server: never signalled, the manager's own way named or (Docker) used.

No systemd runs on this machine and no Docker Engine can: the servers here are real listening
processes, and what manages them is given as a record (systemd) or served by the FAKE Engine of
tests/ports/fake_docker_engine.py speaking the documented Engine API (Docker).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ports import inventory, server_stopping
from ports.errors import Refused
from ports.inventory.docker_engine import EngineClient
from ports.inventory.records import Manager
from tests.ports.fake_docker_engine import FakeContainer, serving_fake_engine

CONTAINER_ID = "3f4e8c1a9b2d" + "0" * 52


def _server_with(child, **fields):
    """servers_of for the child's port, its server's `fields` changed (who manages it, ...)."""

    def servers_of(listeners):
        found = inventory.servers_of(listeners)
        return {
            inode: replace(server, **fields) if server and server.pid == child.pid else server
            for inode, server in found.items()
        }

    return servers_of


def _managed_by(child, manager: Manager):
    """servers_of for the child's port, as if `manager` ran it."""
    return _server_with(child, manager=manager)


def test_a_server_systemd_would_restart_is_not_signalled(listening_child):
    child = listening_child()
    unit = Manager("systemd", "demo.service", "systemctl stop demo", restarts=True)
    result = server_stopping.stop_server(
        child.port,
        child.pid,
        child.create_time(),
        escalate=True,
        servers_fn=_managed_by(child, unit),
    )
    assert result.outcome == "managed" and result.signals_sent == []
    assert result.released is False
    assert [step.via for step in result.plan] == ["manager"]
    assert any("`systemctl stop demo`" in warning for warning in result.warnings)
    assert child.process.poll() is None


def test_a_container_is_stopped_through_the_engine_after_the_same_plan(listening_child, tmp_path):
    child = listening_child()  # stands in for docker-proxy holding the published port
    socket_path = str(tmp_path / "docker.sock")
    container = FakeContainer(CONTAINER_ID, "web-1")
    docker = Manager("docker", "web-1", "docker stop web-1", True, container_id=CONTAINER_ID)
    with serving_fake_engine(socket_path, [container]) as state:
        engine = EngineClient(socket_path)
        plan = server_stopping.stop_server(
            child.port,
            child.pid,
            child.create_time(),
            dry_run=True,
            servers_fn=_managed_by(child, docker),
            engine=engine,
        )
        assert plan.outcome == "dry-run" and [s.via for s in plan.plan] == ["container"]
        assert not any(method == "POST" for method, _ in state.requests)
        result = server_stopping.stop_server(
            child.port,
            child.pid,
            child.create_time(),
            grace_seconds=3,
            servers_fn=_managed_by(child, docker),
            engine=engine,
        )
    assert result.outcome == "container-stopped"
    assert ("POST", f"/containers/{CONTAINER_ID}/stop?t=3") in state.requests
    assert container.running is False
    # The fake Engine stops nothing real: the stand-in still holds the port, and says so.
    assert result.released is False and child.process.poll() is None


def test_an_engine_that_does_not_answer_is_a_clear_refusal(listening_child, tmp_path):
    child = listening_child()
    docker = Manager("docker", "web-1", "docker stop web-1", True, container_id=CONTAINER_ID)
    with pytest.raises(Refused, match="could not stop container web-1"):
        server_stopping.stop_server(
            child.port,
            child.pid,
            child.create_time(),
            servers_fn=_managed_by(child, docker),
            engine=EngineClient(str(tmp_path / "absent.sock")),
        )
    assert child.process.poll() is None


def test_a_result_names_the_manager_that_runs_the_server(listening_child):
    child = listening_child()
    unit = Manager("systemd", "demo.service", "systemctl stop demo", restarts=True)
    result = server_stopping.stop_server(
        child.port, child.pid, child.create_time(), servers_fn=_managed_by(child, unit)
    )
    assert result.as_dict()["manager"] == {
        "kind": "systemd",
        "name": "demo.service",
        "stop_command": "systemctl stop demo",
        "restarts": True,
    }


def test_a_group_the_console_shares_is_signalled_pid_by_pid_and_never_as_a_group(
    listening_child,
):
    import os

    child = listening_child()
    # The console (this process) is a member of the root's process group, as when both were
    # started from one shell job: a signal to the group would reach the console too.
    result = server_stopping.stop_server(
        child.port,
        child.pid,
        child.create_time(),
        dry_run=True,
        servers_fn=_server_with(child, leads_group=True),
        group_members=lambda pgid: [pgid, os.getpid()],
    )
    assert [(step.pid, step.via) for step in result.plan] == [(child.pid, "pid")]
    assert child.process.poll() is None
