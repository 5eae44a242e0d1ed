"""What a refused stop or a failing sampler tells the person: who holds the port, whose process
it is, and when the sampler tries again."""

from __future__ import annotations

import logging
import os

import psutil
import pytest

from ports import stopping
from ports.errors import StaleTarget
from ports.inventory.records import Listener, ProcessInfo, Snapshot
from ports.sampler import MAX_BACKOFF_SECONDS, Sampler


def _snapshot(*listeners: Listener) -> Snapshot:
    return Snapshot(sampled_at=0.0, complete=True, listeners=tuple(listeners))


def _listener(port: int, pids: tuple[int, ...], uid: int = 1000, inode: int = 1) -> Listener:
    return Listener("tcp", "ipv4", "127.0.0.1", port, inode, uid, pids)


def _refusal(snapshot: Snapshot, pid: int = 4242) -> str:
    with pytest.raises(StaleTarget) as refused:
        stopping.terminate(8000, pid, 1.0, snapshot_fn=lambda: snapshot, send_signal=_never_signal)
    return str(refused.value)


def _never_signal(*args: object) -> None:
    raise AssertionError("a stale target is never signalled")


def test_a_stale_stop_says_the_port_is_free_now():
    assert "(it is free now)" in _refusal(_snapshot())


def test_a_stale_stop_names_every_holder_of_the_port_now():
    snapshot = _snapshot(_listener(8000, (70, 71)), _listener(8000, (71, 72), inode=2))
    assert "(it is now held by pid 70, pid 71, pid 72)" in _refusal(snapshot)


def test_a_stale_stop_names_the_uid_when_no_pid_can_be_read():
    assert "(it is now held by a process of uid 0)" in _refusal(_snapshot(_listener(8000, (), 0)))


def _info(user: str) -> ProcessInfo:
    return ProcessInfo(os.getpid(), "python", user, "python", None, 1.0)


def test_a_refused_signal_names_the_owner_by_name_when_known():
    message = stopping._not_permitted_message(os.getpid(), _info("postgres"))
    assert message == (
        f"not permitted to signal pid {os.getpid()} (owned by user postgres); "
        "run the console as that user or ask an admin"
    )


@pytest.mark.parametrize("info", [None, "empty-user"])
def test_a_refused_signal_names_the_uid_when_the_name_is_unknown(info):
    known = None if info is None else _info("")
    message = stopping._not_permitted_message(os.getpid(), known)
    assert f"(owned by uid {os.getuid()})" in message


def test_a_refused_signal_of_a_process_that_is_gone_says_another_user():
    gone = psutil.Popen(["true"])
    gone.wait()
    assert "(owned by another user)" in stopping._not_permitted_message(gone.pid, None)


def test_the_sampler_backs_off_doubling_to_a_cap_and_says_so(caplog):
    sampler = Sampler(take_snapshot=lambda: _snapshot(), interval=1.0)
    with caplog.at_level(logging.ERROR, logger="ports.sampler"):
        try:
            raise OSError("netlink went away")
        except OSError:
            delays = [sampler._back_off("sampling failed") for _ in range(6)]
    assert delays == [2.0, 4.0, 8.0, 16.0, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]
    assert sampler.failures == 6
    assert caplog.messages[:2] == [
        "sampling failed (1 in a row); retrying in 2.0s",
        "sampling failed (2 in a row); retrying in 4.0s",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
def test_a_refused_signal_names_the_uid_of_that_process_not_the_console_s():
    other = psutil.Popen(["sleep", "60"], user=65534)
    try:
        assert "(owned by uid 65534)" in stopping._not_permitted_message(other.pid, None)
    finally:
        other.kill()
        other.wait()
