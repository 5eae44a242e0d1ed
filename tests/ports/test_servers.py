"""Servers, not sockets, against the real servers developers run (tests/ports/real_servers.py).

For each kind: the first snapshot that shows its socket already has every holder, each holder's
role, the server's root and kind, the stop plan, and that a stop releases the port with nothing
left behind or respawned. The servers run on loopback ports; each test ends what it started.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from ports import server_stopping
from ports.inventory import Inventory
from ports.inventory.records import CHILD, MASTER, PROCESS, RELOADER, WORKER
from tests.ports.real_servers import VITE_FIXTURE, running

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/fd"), reason="the server tree is read from Linux's /proc"
)

# kind -> (roles of the holders, oldest first; the server kind; whether the root holds it)
EXPECTED = {
    "gunicorn-w3": ([MASTER, WORKER, WORKER, WORKER], "gunicorn", True),
    "gunicorn-w1": ([MASTER, WORKER], "gunicorn", True),
    "flask-debug": ([RELOADER, CHILD], "Flask", True),
    "flask-app-run": ([RELOADER, CHILD], "Werkzeug (app.run)", True),
    "django-runserver": ([CHILD], "Django runserver", False),
    "uvicorn-reload": ([RELOADER, CHILD], "uvicorn", True),
    "uvicorn-workers": ([MASTER, WORKER, WORKER], "uvicorn", True),
    "forking": ([PROCESS], "python", True),
    "vite": ([PROCESS], "Vite", False),
}
DEADLINE_S = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _skip_without_vite(kind: str) -> None:
    if kind == "vite" and not (VITE_FIXTURE / "node_modules" / ".bin" / "vite").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Vite is not installed in tests/fixtures/vite (make test runs npm ci)")
        pytest.skip("Vite is not installed in tests/fixtures/vite: run `make test` (npm ci)")


def _first_sighting(engine: Inventory, port: int, started) -> list:
    """Poll as the sampler does until the port's socket shows; its listeners at that poll."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        listeners = [each for each in engine.snapshot().on_port(port) if each.proto == "tcp"]
        if listeners:
            return listeners
        assert started.popen.poll() is None, started.log()[-2000:]
        time.sleep(0.05)
    pytest.fail(f"port {port} never showed in the inventory:\n{started.log()[-2000:]}")


def _settled_holders(server):
    """The holder set once it is stable (the same for a second), as /proc says, not the engine."""
    deadline = time.monotonic() + DEADLINE_S
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        holders = server.holders()
        if holders != last:
            last, since = holders, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            return holders
        time.sleep(0.05)
    return last


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_the_first_sighting_has_every_holder_and_names_the_server(kind, tmp_path):
    _skip_without_vite(kind)
    roles, server_kind, root_holds = EXPECTED[kind]
    port = _free_port()
    engine = Inventory()
    engine.snapshot()  # warm, as the console's sampler is when a server starts
    with running(kind, port, tmp_path=tmp_path) as server:
        first = _first_sighting(engine, port, server)
        # Every process holding the socket at that poll was found in that poll: the parent
        # that bound it (a master, a reloader) as well as what it forked. gunicorn forks its
        # workers one by one after binding, so later workers may not exist yet.
        (listener,) = first
        holding_now = server.holders()
        assert set(listener.pids) <= holding_now | _exited(listener.pids)
        if root_holds:
            assert server.root_pid in listener.pids
        settled = _settled_holders(server)
        if kind == "forking":
            settled = {server.root_pid}  # a request's fork would be gone in a moment
        listener = _listener_with(engine, port, settled)
        assert [holder.role for holder in listener.holders] == roles
        assert all(holder.create_time for holder in listener.holders)
        if kind == "flask-app-run":  # `python app.py` twice: the child's environment says Flask
            assert listener.service == "Flask (Werkzeug)"

        found = engine.servers_of([listener])[listener.inode]
        assert found is not None
        assert found.pid == server.root_pid
        assert found.kind == server_kind
        assert found.leads_group  # a new session, as a shell's job
        assert (found.pid in listener.pids) == root_holds
        assert set(listener.pids) <= set(found.pids)
        assert found.manager is not None and not found.manager.restarts


def _exited(pids) -> set[int]:
    return {pid for pid in pids if not os.path.exists(f"/proc/{pid}")}


def _listener_with(engine: Inventory, port: int, holders: set[int]):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for listener in engine.snapshot().on_port(port):
            if set(listener.pids) == holders:
                return listener
        time.sleep(0.05)
    pytest.fail(f"the inventory never showed holders {holders} on port {port}")


@pytest.mark.parametrize(
    ("kind", "new_session"),
    [
        ("gunicorn-w3", True),
        ("flask-debug", True),
        ("flask-debug", False),
        ("django-runserver", True),
        ("django-runserver", False),
        ("uvicorn-reload", True),
        ("uvicorn-workers", False),
        ("forking", True),
        ("vite", True),
    ],
)
def test_stop_ends_the_whole_server_and_releases_the_port(kind, new_session, tmp_path):
    _skip_without_vite(kind)
    port = _free_port()
    with running(kind, port, new_session=new_session, tmp_path=tmp_path) as started:
        started.wait_listening()
        engine = Inventory()
        listener = _wait_for_server(engine, port, started.root_pid)
        server = engine.servers_of([listener])[listener.inode]
        assert server is not None
        tree = set(server.pids)

        def snapshot():
            return engine.snapshot()

        plan = server_stopping.stop_server(
            port,
            server.pid,
            server.create_time,
            dry_run=True,
            snapshot_fn=snapshot,
            servers_fn=engine.servers_of,
        )
        assert plan.outcome == "dry-run" and plan.signals_sent == []
        assert plan.plan[0].pid == server.pid
        assert {step.pid for step in plan.plan} >= tree
        assert {step.via for step in plan.plan} == {"group" if new_session else "pid"}
        assert all(os.path.exists(f"/proc/{pid}") for pid in tree)  # nothing was signalled

        result = server_stopping.stop_server(
            port,
            server.pid,
            server.create_time,
            grace_seconds=20,
            escalate=True,
            snapshot_fn=snapshot,
            servers_fn=engine.servers_of,
        )
        assert result.outcome == "stopped", (result, started.log()[-2000:])
        assert result.released and result.respawned == []
        assert not started.holders()
        for pid in tree - {started.root_pid}:  # the root is ours to reap (the harness does)
            assert _gone(pid), f"pid {pid} of the {kind} tree survived the stop"


def _wait_for_server(engine: Inventory, port: int, root: int):
    """The port's listener once its server's root is the process we started."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for listener in engine.snapshot().on_port(port):
            found = engine.servers_of([listener])[listener.inode]
            if found is not None and found.pid == root:
                return listener
        time.sleep(0.1)
    pytest.fail(f"no server rooted at pid {root} on port {port}")


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # exited, waiting for its parent to reap it
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_an_orphaned_child_keeps_its_server_s_hint(tmp_path):
    # uvicorn --reload's child says only "python -c ... spawn_main": the hint is its reloader's.
    port = _free_port()
    engine = Inventory()
    with running("uvicorn-reload", port, tmp_path=tmp_path) as server:
        server.wait_listening()
        listener = _listener_with(engine, port, _settled_holders(server))
        assert listener.service == "uvicorn (ASGI)"
        child = next(holder.pid for holder in listener.holders if holder.role == CHILD)
        server.tree()  # the harness ends the orphan too, by its pid and start time
        os.kill(server.root_pid, 9)  # the reloader we started dies; its child lives on
        orphan = _listener_with(engine, port, {child})
        assert orphan.service == "uvicorn (ASGI)"
        assert [holder.role for holder in orphan.holders] == [PROCESS]
