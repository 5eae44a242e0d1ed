"""What terminate says when the process moves between two of its steps: it exited before the
signal, it finished exiting just before the KILL, it is another user's after all, or it has
gone before it was looked at. A real listening child holds the port; the signal sender is the
seam where each race is staged, and the child is ended by its pid at teardown."""

from __future__ import annotations

import pytest

from ports import stopping
from ports.errors import Refused, StaleTarget
from ports.inventory.records import ProcessInfo


def _terminate(child, **seams):
    return stopping.terminate(
        child.port, child.pid, child.create_time(), grace_seconds=0.2, **seams
    )


def test_a_process_that_exits_just_before_the_signal_is_stale_not_a_failure(listening_child):
    child = listening_child()

    def exited(pid, signum, pidfd):
        raise ProcessLookupError(pid)

    with pytest.raises(StaleTarget) as raised:
        _terminate(child, send_signal=exited)
    assert str(raised.value) == f"pid {child.pid} exited before it could be signalled"


def test_a_signal_the_kernel_refuses_names_the_owner(listening_child):
    child = listening_child()

    def refused(pid, signum, pidfd):
        raise PermissionError(pid)

    def owned_by_postgres(pid):
        return ProcessInfo(pid, "postgres", "postgres", "postgres", None, child.create_time())

    with pytest.raises(Refused) as raised:
        _terminate(child, send_signal=refused, process_info_fn=owned_by_postgres)
    assert str(raised.value) == (
        f"not permitted to signal pid {child.pid} (owned by user postgres); "
        "run the console as that user or ask an admin"
    )


def test_a_process_gone_when_looked_at_says_refresh(listening_child):
    child = listening_child()
    with pytest.raises(StaleTarget) as raised:
        _terminate(child, process_info_fn=lambda pid: None)
    assert str(raised.value) == f"pid {child.pid} has exited; refresh and try again"


def test_a_process_that_finishes_exiting_just_before_the_kill_counts_as_terminated(
    listening_child,
):
    child = listening_child(ignore_term=True)
    sent = []

    def term_then_gone(pid, signum, pidfd):
        sent.append(signum)
        if len(sent) == 2:  # the KILL: it has exited since the wait gave up
            raise ProcessLookupError(pid)

    result = _terminate(child, send_signal=term_then_gone, escalate=True)
    assert result.outcome == "terminated" and result.signals_sent == ["TERM"]
    assert len(sent) == 2


def test_a_kill_the_kernel_refuses_after_a_term_names_the_owner(listening_child):
    child = listening_child(ignore_term=True)
    sent = []

    def term_then_refused(pid, signum, pidfd):
        sent.append(signum)
        if len(sent) == 2:
            raise PermissionError(pid)

    with pytest.raises(Refused, match=f"not permitted to signal pid {child.pid}"):
        _terminate(child, send_signal=term_then_refused, escalate=True)
