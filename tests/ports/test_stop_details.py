"""The small judgements around a stop: what a terminate warns of, how the wait for an exit ends
without a pidfd, and when a page's table is out of date."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from ports import sampler, server_stopping, stopping
from ports.inventory.records import Holder, Listener, Server, Snapshot


def _listener_with(*holders: Holder) -> Listener:
    return Listener(
        "tcp",
        "ipv4",
        "127.0.0.1",
        8000,
        1,
        1000,
        pids=tuple(h.pid for h in holders),
        holders=holders,
    )


SERVER = Server(100, 1.0, "gunicorn", "gunicorn app:app", "gunicorn", (100, 101, 102), False)


@pytest.mark.parametrize(
    ("role", "warnings"),
    [
        (
            "worker",
            [
                "pid 101 is a worker of gunicorn master 100: the master respawns it; "
                "stop 100 instead"
            ],
        ),
        (
            "child",
            [
                "pid 101 is the child of gunicorn reloader 100, which keeps the port and may "
                "restart it; stop 100 instead"
            ],
        ),
        ("process", []),
    ],
)
def test_terminating_one_holder_warns_when_its_server_lives_on(role, warnings):
    listener = _listener_with(
        Holder(100, 1.0, "gunicorn", "gunicorn", 1, "master"),
        Holder(101, 2.0, "gunicorn", "gunicorn", 100, role),
    )
    assert server_stopping.terminate_warnings(listener, 101, SERVER) == warnings
    # The root itself, no listener, no server: nothing to warn of.
    assert server_stopping.terminate_warnings(listener, 100, SERVER) == []
    assert server_stopping.terminate_warnings(None, 101, SERVER) == []
    assert server_stopping.terminate_warnings(listener, 101, None) == []


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        yield process
    finally:
        process.kill()  # our own child, by its pid
        process.wait(timeout=30)


def test_without_a_pidfd_the_wait_ends_false_at_its_deadline_while_the_process_runs(sleeper):
    assert stopping._wait_for_exit(None, psutil.Process(sleeper.pid), 0.2) is False
    assert sleeper.poll() is None


def test_without_a_pidfd_the_wait_sees_an_exit_as_a_zombie_or_gone(sleeper):
    proc = psutil.Process(sleeper.pid)
    sleeper.kill()
    assert stopping._wait_for_exit(None, proc, 60) is True  # a zombie: its sockets are closed
    sleeper.wait(timeout=30)
    assert stopping._wait_for_exit(None, proc, 60) is True  # reaped


def test_a_page_is_out_of_date_unless_a_running_sampler_says_nothing_changed(monkeypatch):
    seen = Snapshot(sampled_at=100.0, complete=True, listeners=())
    monkeypatch.setattr(sampler.live, "snapshot", seen)
    monkeypatch.setattr(sampler.live, "last_change_at", 50.0)
    monkeypatch.setattr(sampler.live, "running", True)
    assert sampler.changed_since(60.0) is False
    assert sampler.changed_since(50.0) is True  # a change at the instant it rendered: redraw
    monkeypatch.setattr(sampler.live, "running", False)  # a stopped sampler's word is old
    assert sampler.changed_since(60.0) is True
    monkeypatch.setattr(sampler.live, "running", True)
    monkeypatch.setattr(sampler.live, "snapshot", None)
    assert sampler.changed_since(60.0) is True
