"""After the wall clock is stepped (NTP, a VM's host, a resume), the console's create times move
with psutil's, so a stop or terminate judged on them is not refused as "a different process"."""

from __future__ import annotations

import os

import psutil

from ports import inventory
from ports.inventory import processes


def test_create_times_follow_a_step_of_the_wall_clock(monkeypatch):
    before = inventory.process_info(os.getpid())
    assert before is not None
    stepped = processes.boot_time() + 11.0
    monkeypatch.setattr(processes, "boot_time", lambda: stepped)
    monkeypatch.setattr(processes, "_boot", [processes._boot[0], float("-inf")])  # due now
    after = inventory.process_info(os.getpid())
    assert after is not None
    assert round(after.create_time - before.create_time, 2) == 11.0


def test_create_times_agree_with_psutil():
    info = inventory.process_info(os.getpid())
    assert info is not None
    assert abs(info.create_time - psutil.Process().create_time()) <= 0.01


def test_a_create_time_handed_out_before_a_step_still_names_the_process(monkeypatch):
    # The port page's Stop link carries the create time from the listing; the clock is stepped
    # before the user clicks it. The stop must still recognise the server, not answer 409.
    before = inventory.process_info(os.getpid())
    assert before is not None
    stepped = processes.boot_time() + 11.0
    monkeypatch.setattr(processes, "_boot_times_seen", list(processes._boot_times_seen))
    monkeypatch.setattr(processes, "boot_time", lambda: stepped)
    monkeypatch.setattr(processes, "_boot", [processes._boot[0], float("-inf")])  # due now
    after = inventory.process_info(os.getpid())
    assert after is not None
    assert processes.same_start(after.create_time, before.create_time, 0.05)
    assert processes.same_start(before.create_time, after.create_time, 0.05)
    # Only the step's exact size is forgiven: another start time is another process.
    assert not processes.same_start(after.create_time, before.create_time + 3.0, 0.05)
    assert not processes.same_start(after.create_time, before.create_time - 11.0, 0.05)


def test_without_a_step_only_the_same_start_matches(monkeypatch):
    monkeypatch.setattr(processes, "_boot_times_seen", [processes._boot[0]])
    assert processes.same_start(100.00, 100.03, 0.05)
    assert not processes.same_start(100.00, 100.2, 0.05)
    assert not processes.same_start(100.00, 111.0, 0.05)


def test_a_stop_judged_on_a_create_time_from_before_a_step_goes_ahead(monkeypatch, listening_child):
    from ports import server_stopping

    child = listening_child()
    listed = child.create_time()  # what the page's Stop link carries
    stepped = processes.boot_time() + 11.0
    monkeypatch.setattr(processes, "_boot_times_seen", list(processes._boot_times_seen))
    monkeypatch.setattr(processes, "boot_time", lambda: stepped)
    monkeypatch.setattr(processes, "_boot", [processes._boot[0], float("-inf")])  # due now
    result = server_stopping.stop_server(child.port, child.pid, listed, grace_seconds=15)
    assert result.signals_sent == ["TERM"]
    assert result.released
