"""'Address already in use', explained: a holder, an inherited socket, TIME_WAIT, free."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

import pytest

from ports import inventory
from ports.free_ports import find_free_port
from ports.history import opener_of
from ports.inventory.diagnosis import explain_port
from ports.sampler import Sampler
from tests.ports.time_wait_helpers import leave_time_wait

PR_SET_CHILD_SUBREAPER = 36


def test_it_names_the_holder_and_its_command(listening_child):
    child = listening_child()
    explanation = explain_port(child.port, inventory.snapshot())
    assert explanation.kind == "held"
    assert f"held by python (pid {child.pid})" in explanation.summary
    assert "Stop the server below" in explanation.fix


def test_it_explains_time_wait_after_a_real_closed_connection():
    port = leave_time_wait(reuse_address=False)
    explanation = explain_port(port, inventory.Inventory().snapshot())
    assert explanation.kind == "time-wait", explanation.summary
    assert explanation.free is False
    assert explanation.time_wait >= 1
    assert "TIME_WAIT lasts 60 s on Linux" in explanation.summary
    assert "did not set SO_REUSEADDR" in explanation.summary
    assert explanation.fix.startswith("Nothing to kill")


def test_it_calls_a_free_port_free():
    port = find_free_port(33000)[0]
    assert explain_port(port, inventory.snapshot()).kind == "free"


@pytest.mark.django_db(transaction=True)
async def test_it_recognises_a_socket_inherited_from_a_parent_that_exited():
    # Orphans are adopted by the nearest subreaper: make it this test, so the child that keeps
    # the socket survives its parent and can be ended by its pid afterwards.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import socket, subprocess, sys, time\n"
                "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
                "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
                " pass_fds=[s.fileno()])\n"
                "print(s.getsockname()[1], c.pid, flush=True)\n"
                "sys.stdin.readline()\n"
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    port, orphan = map(int, parent.stdout.readline().split())
    sampler = Sampler(take_snapshot=inventory.Inventory().snapshot, interval=0.05)
    try:
        await sampler.sample_once()  # history: the socket opened with the parent holding it
        parent.stdin.write("\n")
        parent.stdin.flush()
        parent.wait(timeout=10)
        await sampler.sample_once()
        snapshot = inventory.Inventory().snapshot()
        (listener,) = [item for item in snapshot.on_port(port) if item.proto == "tcp"]
        assert listener.pids == (orphan,)
        from asgiref.sync import sync_to_async

        opener = await sync_to_async(opener_of)(listener)
        explanation = explain_port(port, snapshot, opener_of=lambda _: opener)
        assert explanation.kind == "inherited", explanation.summary
        assert f"(pid {parent.pid}) opened it and has exited" in explanation.summary
        assert f"Terminate pid {orphan}" in explanation.fix
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        if parent.poll() is None:
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()
        os.kill(orphan, signal.SIGKILL)  # ours: it was started by our child
        os.waitpid(orphan, 0)  # adopted by this process, so ours to reap


def test_it_says_which_servers_bind_over_a_time_wait_their_server_allowed():
    # The departed server set SO_REUSEADDR: a SO_REUSEADDR bind succeeds, a plain one fails.
    port = leave_time_wait(reuse_address=True)
    explanation = explain_port(port, inventory.Inventory().snapshot(), reserved={})
    assert (explanation.kind, explanation.free) == ("time-wait", False)
    assert "binds it right now" in explanation.fix
    assert (
        "gunicorn, uvicorn, Node (so Vite), Werkzeug/Flask, Django's runserver" in explanation.fix
    )
    assert explanation.alternative is not None
    assert f"use port {explanation.alternative} instead" in explanation.fix


def test_it_names_the_holder_of_a_udp_only_port(listening_child):
    child = listening_child(host="127.0.0.1", proto="udp")
    explanation = explain_port(child.port, inventory.Inventory().snapshot())
    assert explanation.kind == "held"
    assert explanation.free is True  # a TCP server binds it
    assert f"Only UDP uses port {child.port}: python (pid {child.pid})" in explanation.summary
    assert f"127.0.0.1:{child.port}" in explanation.summary
    assert f"stop python (pid {child.pid})" in explanation.fix


def test_it_prints_ipv6_addresses_in_brackets(listening_child):
    child = listening_child(host="::1")
    explanation = explain_port(child.port, inventory.Inventory().snapshot())
    assert explanation.kind == "held"
    assert f"on [::1]:{child.port}: " in explanation.summary


def test_it_offers_a_port_no_project_reserves(listening_child):
    child = listening_child(host="127.0.0.1")
    next_free = find_free_port(child.port + 1)[0]
    explanation = explain_port(
        child.port, inventory.Inventory().snapshot(), reserved={next_free: "shop"}
    )
    assert explanation.alternative is not None
    assert explanation.alternative > next_free
    assert f"use port {explanation.alternative} instead: it is free and no project reserves it" in (
        explanation.fix
    )


def test_it_calls_a_free_port_free_as_a_plain_bind_would():
    port = find_free_port(33100)[0]
    explanation = explain_port(port, inventory.snapshot())
    assert explanation.free is True
    assert "bind() without SO_REUSEADDR succeeds" in explanation.summary
    assert explanation.alternative is None


@pytest.mark.django_db
def test_it_answers_free_false_for_time_wait_in_the_api(client, viewer_user, bearer):
    port = leave_time_wait(reuse_address=True)
    response = client.get(f"/api/v1/ports/{port}", headers=bearer(viewer_user))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["free"] is False
    assert body["listeners"] == []
    assert body["explanation"]["kind"] == "time-wait"
    assert body["explanation"]["time_wait_connections"] >= 1
    assert isinstance(body["explanation"]["alternative_port"], int)


@pytest.mark.django_db
def test_it_skips_a_reserved_port_as_the_alternative_in_the_api(
    client, viewer_user, bearer, listening_child
):
    from ports.models import Project

    child = listening_child(host="127.0.0.1")
    next_free = find_free_port(child.port + 1)[0]
    Project.objects.create(name="shop", preferred_port=next_free)
    response = client.get(f"/api/v1/ports/{child.port}", headers=bearer(viewer_user))
    body = response.json()
    assert body["free"] is False
    assert body["explanation"]["alternative_port"] > next_free


def test_its_fix_names_the_way_to_stop_the_server_for_good(listening_child):
    from dataclasses import replace

    from ports.inventory.records import Manager

    child = listening_child()
    snap = inventory.snapshot()
    (listener,) = snap.on_port(child.port)
    server = inventory.servers_of([listener])[listener.inode]
    assert server is not None and server.pid == child.pid
    plain = explain_port(child.port, snap, server_of=lambda _: server)
    assert f"Stop python (pid {child.pid}): Stop the server below" in plain.fix
    # The same server as systemd would run it (no systemd on this machine: a record of it).
    unit = Manager("systemd", "demo.service", "systemctl stop demo", restarts=True)
    managed = explain_port(child.port, snap, server_of=lambda _: replace(server, manager=unit))
    assert "through systemd, which would restart it: `systemctl stop demo`" in managed.fix
    assert "Ctrl-C" not in managed.fix
