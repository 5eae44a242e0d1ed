"""POST /api/v1/ports/{port}/stop, the port page's Stop and the websocket's, through the gate."""

from __future__ import annotations

import json
import os
import socket

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from console.asgi import application
from console.foundation import tokens
from console.foundation.models import AuditEntry
from tests.conftest import wait_until
from tests.ports.real_servers import running

pytestmark = pytest.mark.django_db(transaction=True)


def _stop(client, headers, port: int, **body):
    return client.post(
        f"/api/v1/ports/{port}/stop",
        json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def _body(child, **extra) -> dict:
    return {"server_pid": child.pid, "server_create_time": child.create_time(), **extra}


def test_a_dry_run_shows_the_plan_and_signals_nothing(
    client, operator_user, bearer, listening_child
):
    child = listening_child()
    response = _stop(client, bearer(operator_user), child.port, **_body(child, dry_run=True))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["outcome"] == "dry-run" and answer["signals_sent"] == []
    # Started by the test, in the test's own process group: signalled by pid, not by group.
    assert answer["plan"] == [
        {"pid": child.pid, "role": "process", "name": "python", "signal": "TERM", "via": "pid"}
    ]
    assert child.process.poll() is None
    entry = AuditEntry.objects.get(action="port.stop")
    assert entry.outcome == "dry-run" and entry.detail["pids"] == [child.pid]


def test_the_listing_names_the_server_to_stop(client, viewer_user, bearer, listening_child):
    child = listening_child()
    (listener,) = client.get(
        f"/api/v1/ports?port={child.port}", headers=bearer(viewer_user)
    ).json()["items"]
    assert listener["server"]["pid"] == child.pid
    assert listener["server"]["pids"] == [child.pid]
    assert listener["holders"][0]["role"] == "process"
    assert listener["manager"]["kind"] in ("none", "terminal")
    assert listener["dual_stack"] is False


def test_an_operator_stops_the_server_and_the_port_is_released(
    client, operator_user, bearer, listening_child
):
    child = listening_child()
    response = _stop(client, bearer(operator_user), child.port, **_body(child, grace_seconds=10))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["outcome"], answer["released"], answer["respawned"]) == ("stopped", True, [])
    assert answer["signals_sent"] == ["TERM"]
    child.process.wait(timeout=10)  # exited (the stop reaped it: it was our child)
    assert AuditEntry.objects.get(action="port.stop").outcome == "stopped"


def test_a_viewer_and_a_read_token_cannot_stop(
    client, viewer_user, admin_user, bearer, listening_child
):
    child = listening_child()
    assert _stop(client, bearer(viewer_user), child.port, **_body(child)).status_code == 403
    _record, read_token = tokens.issue_personal(admin_user, "read only", ["read"], 1)
    headers = {"Authorization": f"Bearer {read_token}"}
    assert _stop(client, headers, child.port, **_body(child, dry_run=True)).status_code == 403
    assert child.process.poll() is None
    assert AuditEntry.objects.filter(action="port.stop", outcome="forbidden").count() == 2


def test_a_stale_root_is_a_409_naming_the_port_s_server(
    client, operator_user, bearer, listening_child
):
    child = listening_child()
    stale = _stop(
        client, bearer(operator_user), child.port, server_pid=child.pid, server_create_time=1.0
    )
    assert stale.status_code == 409
    assert "different process" in stale.json()["detail"]
    other = listening_child()
    wrong = _stop(client, bearer(operator_user), child.port, **_body(other))
    assert wrong.status_code == 409
    assert f"its server is now pid {child.pid}" in wrong.json()["detail"]
    assert child.process.poll() is None and other.process.poll() is None


@pytest.mark.parametrize(
    "body",
    [
        {"server_pid": "x", "server_create_time": 1.0},
        {"server_pid": 5, "server_create_time": 1.0, "grace_seconds": 999},
        {"server_pid": 5},
        {"server_pid": 5, "server_create_time": 1.0, "dry_run": "sometimes"},
    ],
)
def test_bad_input_is_a_422_with_a_reason(client, operator_user, bearer, body):
    response = _stop(client, bearer(operator_user), 8000, **body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_the_console_s_own_process_is_refused(client, operator_user, bearer):
    with socket.socket() as ours:
        ours.bind(("127.0.0.1", 0))
        ours.listen()
        port = ours.getsockname()[1]
        response = _stop(
            client, bearer(operator_user), port, server_pid=os.getpid(), server_create_time=1.0
        )
    assert response.status_code == 403
    assert "protected" in response.json()["detail"]


def test_the_port_page_plans_then_stops_the_server(client, operator_user, listening_child):
    child = listening_child()
    client.force_login(operator_user)
    page = client.get(f"/ports/{child.port}/").content.decode()
    assert "Stop the server…" in page and f"Terminate pid {child.pid}…" in page
    query = f"server_pid={child.pid}&server_create_time={child.create_time():.2f}"
    plan = client.get(f"/ports/{child.port}/stop/?{query}", headers={"HX-Request": "true"})
    assert plan.status_code == 200
    assert "Stop the server, pid" in plan.content.decode() and child.process.poll() is None
    done = client.post(
        f"/ports/{child.port}/stop/",
        {"server_pid": child.pid, "server_create_time": f"{child.create_time():.2f}"},
        headers={"HX-Request": "true"},
    )
    assert done.status_code == 200
    assert f"port {child.port} is free now" in done.content.decode()
    child.process.wait(timeout=10)  # exited (the stop reaped it: it was our child)


async def test_the_websocket_plans_a_stop_and_refuses_a_viewer(
    operator_user, viewer_user, listening_child
):
    child = await sync_to_async(listening_child)()
    create_time = await sync_to_async(child.create_time)()
    for user, expected in ((viewer_user, "error"), (operator_user, "stopped")):
        raw = (await sync_to_async(tokens.issue_pair)(user))["access"]
        communicator = WebsocketCommunicator(
            application,
            "/ws/v1/events",
            headers=[(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {raw}".encode())],
        )
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to(
            {
                "stop": {
                    "port": child.port,
                    "server_pid": child.pid,
                    "server_create_time": create_time,
                    "dry_run": True,
                }
            }
        )
        reply = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        assert reply["type"] == expected, reply
        if expected == "stopped":
            assert reply["outcome"] == "dry-run" and reply["plan"][0]["pid"] == child.pid
        else:
            assert reply["status"] == 403
    assert child.process.poll() is None


def test_terminating_a_worker_warns_that_its_master_respawns_it(
    client, operator_user, bearer, tmp_path
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running("gunicorn-w1", port, tmp_path=tmp_path) as server:
        server.wait_listening()
        headers = bearer(operator_user)

        def worker():
            items = client.get(f"/api/v1/ports?port={port}", headers=headers).json()["items"]
            workers = [h for item in items for h in item["holders"] if h["role"] == "worker"]
            return workers[0] if workers else None

        holder = wait_until(worker, timeout=30)
        # Each holder's Terminate button carries that holder's own start time.
        items = client.get(f"/api/v1/ports?port={port}", headers=headers).json()["items"]
        started = {h["pid"]: h["create_time"] for item in items for h in item["holders"]}
        client.force_login(operator_user)
        page = client.get(f"/ports/{port}/").content.decode()
        assert {server.root_pid, holder["pid"]} <= started.keys()
        for pid, create_time in started.items():
            assert f"?pid={pid}&amp;create_time={create_time:.2f}" in page
        response = client.post(
            f"/api/v1/ports/{port}/terminate",
            json.dumps({"pid": holder["pid"], "create_time": holder["create_time"]}),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 200, response.content
        (warning,) = response.json()["warnings"]
        assert warning == (
            f"pid {holder['pid']} is a worker of gunicorn master {server.root_pid}: the master "
            f"respawns it; stop {server.root_pid} instead"
        )
