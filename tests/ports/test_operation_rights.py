"""ports.operations judges rights itself: the CLI and the MCP server call it without the API's
`Needs` in front, so a viewer, a read token and an operator facing another user's process are
refused there, and every stop and terminate leaves an audit row that says what happened."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from console.foundation import gate
from console.foundation.models import AuditEntry
from ports import errors, inventory, operations
from tests.conftest import Child, skip_or_fail, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# A master that listens as root and forks a worker that drops to `nobody` and keeps the socket:
# the shape of a server that binds a port and runs its workers as another user.
MIXED_OWNERS = textwrap.dedent(
    """
    import os, socket, time
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    worker = os.fork()
    if worker == 0:
        os.setgid(65534)
        os.setuid(65534)
        time.sleep(3600)
        os._exit(0)
    print(s.getsockname()[1], worker, flush=True)
    time.sleep(3600)
    """
)


@pytest.fixture
def master_with_a_worker_of_another_user():
    if os.getuid() != 0:
        skip_or_fail("needs root to fork a worker that runs as another user")
    process = subprocess.Popen(
        [sys.executable, "-c", MIXED_OWNERS], stdout=subprocess.PIPE, text=True
    )
    port, worker = (int(word) for word in process.stdout.readline().split())
    master = Child(process, port)
    try:
        yield master, worker
    finally:
        # Both started here: the worker by the pid its master printed, the master by its own.
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
        master.stop()


def _server_of(port: int, pid: int):
    def found():
        servers = inventory.servers_of(inventory.snapshot().on_port(port))
        return next((s for s in servers.values() if s is not None and s.pid == pid), None)

    return wait_until(found, timeout=20)


def test_stopping_a_server_whose_worker_is_another_users_needs_an_admin(
    operator_user, admin_user, master_with_a_worker_of_another_user
):
    master, worker = master_with_a_worker_of_another_user
    server = _server_of(master.port, master.pid)
    assert server is not None and set(server.pids) == {master.pid, worker}
    when = master.create_time()

    with pytest.raises(gate.Refused, match="admin"):
        operations.stop_for(
            operator_user, port=master.port, server_pid=master.pid, server_create_time=when
        )
    refused = AuditEntry.objects.get(action="port.stop", username=operator_user.username)
    assert refused.target == f"port {master.port} server {master.pid}"
    assert refused.outcome == "forbidden"

    planned = operations.stop_for(
        admin_user,
        port=master.port,
        server_pid=master.pid,
        server_create_time=when,
        dry_run=True,
    )
    assert planned.outcome == "dry-run"
    assert {step.pid for step in planned.plan} == {master.pid, worker}
    assert master.process.poll() is None  # a plan signals nothing
    entry = AuditEntry.objects.get(action="port.stop", username=admin_user.username)
    assert entry.outcome == "dry-run"
    assert entry.detail["escalate"] is False and entry.detail["released"] is False
    assert sorted(entry.detail["pids"]) == sorted([master.pid, worker])
    assert entry.detail["process"] == server.cmdline


@pytest.mark.parametrize("operation", ["stop", "terminate"])
def test_a_viewer_calling_an_operation_directly_is_refused_and_audited(
    viewer_user, listening_child, operation
):
    child = listening_child()
    with pytest.raises(gate.Refused, match="operator"):
        _call(operation, viewer_user, child)
    assert child.process.poll() is None
    entry = AuditEntry.objects.get(action=f"port.{operation}")
    assert entry.username == viewer_user.username and entry.outcome == "forbidden"
    assert entry.target == f"port {child.port} {'server' if operation == 'stop' else 'pid'} " + (
        f"{child.pid}"
    )


@pytest.mark.parametrize("operation", ["stop", "terminate"])
def test_a_read_token_cannot_run_an_operation_for_its_operator(
    operator_user, listening_child, operation
):
    child = listening_child()
    with pytest.raises(gate.Refused, match=r"scopes \(read\)"):
        _call(operation, operator_user, child, scope="read")
    assert child.process.poll() is None
    assert AuditEntry.objects.get(action=f"port.{operation}").outcome == "forbidden"


def test_an_operators_terminate_is_audited_with_what_it_sent(operator_user, listening_child):
    child = listening_child()
    result = operations.terminate_for(
        operator_user, port=child.port, pid=child.pid, create_time=child.create_time()
    )
    assert result.outcome in ("terminated", "released")
    assert wait_until(lambda: child.process.poll() is not None, timeout=20)
    entry = AuditEntry.objects.get(action="port.terminate")
    assert entry.target == f"port {child.port} pid {child.pid}"
    assert entry.outcome == result.outcome
    assert entry.detail["signal"] == "TERM" and entry.detail["escalate"] is False
    assert entry.detail["released"] == result.released
    assert entry.detail["process"].startswith(sys.executable)


def test_an_operators_stop_is_audited_with_its_pids_and_whether_the_port_came_free(
    operator_user, listening_child
):
    child = listening_child()
    result = operations.stop_for(
        operator_user,
        port=child.port,
        server_pid=child.pid,
        server_create_time=child.create_time(),
    )
    assert result.released is True
    entry = AuditEntry.objects.get(action="port.stop")
    assert entry.target == f"port {child.port} server {child.pid}"
    assert entry.outcome == result.outcome
    assert entry.detail == {
        "escalate": False,
        "released": True,
        "pids": [child.pid],
        "process": entry.detail["process"],
    }
    assert entry.detail["process"].startswith(sys.executable)


def _call(operation: str, user, child: Child, **extra):
    if operation == "stop":
        return operations.stop_for(
            user,
            port=child.port,
            server_pid=child.pid,
            server_create_time=child.create_time(),
            **extra,
        )
    return operations.terminate_for(
        user, port=child.port, pid=child.pid, create_time=child.create_time(), **extra
    )


def test_terminating_a_pid_that_does_not_hold_the_port_is_refused_as_stale(
    operator_user, listening_child
):
    holder, other = listening_child(), listening_child()
    with pytest.raises(errors.StaleTarget):
        operations.terminate_for(
            operator_user, port=other.port, pid=holder.pid, create_time=holder.create_time()
        )
    assert holder.process.poll() is None and other.process.poll() is None
    entry = AuditEntry.objects.get(action="port.terminate")
    assert (entry.target, entry.outcome) == (f"port {other.port} pid {holder.pid}", "StaleTarget")


ADDRESS = "127.0.0.9"  # not the test client's default: a row that lost the request shows it


def test_a_stop_through_the_api_is_judged_and_audited_for_the_caller_and_their_address(
    client, operator_user, admin_user, bearer, master_with_a_worker_of_another_user
):
    import json

    master, _worker = master_with_a_worker_of_another_user
    assert _server_of(master.port, master.pid) is not None
    body = json.dumps(
        {"server_pid": master.pid, "server_create_time": master.create_time(), "dry_run": True}
    )

    def post(user):
        return client.post(
            f"/api/v1/ports/{master.port}/stop",
            body,
            content_type="application/json",
            headers=bearer(user),
            REMOTE_ADDR=ADDRESS,
        )

    refused = post(operator_user)
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    (row,) = AuditEntry.objects.all()  # one row: the gate's, not a second one for the 403
    assert (row.action, row.outcome, row.address, row.detail["via"]) == (
        "port.stop",
        "forbidden",
        ADDRESS,
        "api",
    )
    assert post(admin_user).status_code == 200
    planned = AuditEntry.objects.get(action="port.stop", outcome="dry-run")
    assert (planned.address, planned.username) == (ADDRESS, admin_user.username)
    assert master.process.poll() is None


def test_a_stop_told_to_escalate_ends_a_server_that_ignores_term(operator_user, listening_child):
    child = listening_child(ignore_term=True)
    result = operations.stop_for(
        operator_user,
        port=child.port,
        server_pid=child.pid,
        server_create_time=child.create_time(),
        grace_seconds=0.5,
        escalate=True,
    )
    assert wait_until(lambda: child.process.poll() is not None, timeout=30)
    assert result.released is True
    assert AuditEntry.objects.get(action="port.stop").detail["escalate"] is True


def _terminate_over_api(client, user, bearer, port: int, **body):
    import json

    return client.post(
        f"/api/v1/ports/{port}/terminate",
        json.dumps(body),
        content_type="application/json",
        headers=bearer(user),
        REMOTE_ADDR=ADDRESS,
    )


def test_a_refused_terminate_is_audited_with_who_from_where_and_why(
    client, operator_user, bearer, listening_child
):
    holder, other = listening_child(), listening_child()
    answer = _terminate_over_api(
        client, operator_user, bearer, other.port, pid=holder.pid, create_time=holder.create_time()
    )
    assert answer.status_code == 409
    (entry,) = AuditEntry.objects.filter(action="port.terminate")
    assert (entry.outcome, entry.address, entry.username) == (
        "StaleTarget",
        ADDRESS,
        operator_user.username,
    )
    assert entry.detail == {"reason": answer.json()["detail"]}
    assert f"pid {holder.pid}" in entry.detail["reason"]
    assert holder.process.poll() is None and other.process.poll() is None


def test_a_terminate_through_the_api_is_judged_for_the_caller_and_their_address(
    client, operator_user, bearer, master_with_a_worker_of_another_user
):
    master, worker = master_with_a_worker_of_another_user
    assert _server_of(master.port, master.pid) is not None
    refused = _terminate_over_api(
        client, operator_user, bearer, master.port, pid=worker, create_time=0.0
    )
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    (row,) = AuditEntry.objects.all()  # the gate's row only
    assert (row.action, row.outcome, row.address, row.detail["via"]) == (
        "port.terminate",
        "forbidden",
        ADDRESS,
        "api",
    )


def test_a_terminate_sends_the_signal_asked_for_and_escalates_when_told(
    client, operator_user, bearer, listening_child
):
    # Both servers ignore TERM: only the KILL asked for, or the escalation, ends them.
    for asked in ({"signal": "KILL"}, {"grace_seconds": 0.5, "escalate": True}):
        deaf = listening_child(ignore_term=True)
        answer = _terminate_over_api(
            client,
            operator_user,
            bearer,
            deaf.port,
            pid=deaf.pid,
            create_time=deaf.create_time(),
            **asked,
        )
        assert answer.status_code == 200, answer.content
        assert wait_until(lambda process=deaf.process: process.poll() is not None, timeout=30)
    rows = AuditEntry.objects.filter(action="port.terminate").order_by("id")
    assert [(row.address, row.detail["signal"], row.detail["escalate"]) for row in rows] == [
        (ADDRESS, "KILL", False),
        (ADDRESS, "TERM", True),
    ]
