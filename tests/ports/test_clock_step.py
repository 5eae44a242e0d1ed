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
