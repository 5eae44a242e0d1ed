"""One gate, checked at every action and on open sockets; a process is judged by its owner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from channels.testing import WebsocketCommunicator

from console.foundation import tokens
from console.foundation.models import AuditEntry
from tests.conftest import Child, skip_or_fail

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = "http://127.0.0.1:8000"


def test_a_viewer_is_refused_before_the_body_is_parsed(client, viewer_user, bearer):
    response = client.post(
        "/api/v1/checks",
        "not json at all",
        content_type="application/json",
        headers=bearer(viewer_user),
    )
    assert response.status_code == 403 and "operator" in response.json()["detail"]


def test_a_tokens_missing_scope_is_named_not_blamed_on_the_role(client, admin_user, personal_token):
    _record, raw = personal_token(admin_user, ["read"])
    body = {"name": "x", "type": "tcp", "target": {"port": 1}}
    response = client.post(
        "/api/v1/checks",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "this token's scopes (read) do not include operate"
    entry = AuditEntry.objects.filter(action="check.create", outcome="forbidden").get()
    assert entry.detail["scope"] == "read" and entry.detail["via"] == "api"


def test_an_access_token_dies_with_its_refresh_family(client, operator_user):
    pair = tokens.issue_pair(operator_user)
    headers = {"Authorization": f"Bearer {pair['access']}"}
    assert client.get("/api/v1/ports", headers=headers).status_code == 200
    tokens.revoke(pair["refresh"])
    assert client.get("/api/v1/ports", headers=headers).status_code == 401
    # Reuse of a rotated refresh token revokes the family: the new access token dies too.
    first = tokens.issue_pair(operator_user)
    _user, second = tokens.rotate(first["refresh"])
    rotated = {"Authorization": f"Bearer {second['access']}"}
    assert client.get("/api/v1/ports", headers=rotated).status_code == 200
    with pytest.raises(tokens.InvalidToken):
        tokens.rotate(first["refresh"])
    assert client.get("/api/v1/ports", headers=rotated).status_code == 401


def test_the_allowlist_holds_at_every_action_not_only_at_the_door(operator_user):
    from console.foundation import gate, runtime_settings

    actor = gate.Actor(user=operator_user, via=gate.WEBSOCKET, address="192.168.7.9")
    assert gate.refusal(actor, "operator") is None
    runtime_settings.update({"allowed_networks": "10.0.0.0/8"})
    assert "192.168.7.9" in gate.refusal(actor, "operator")


def _headers(bearer: str | None = None, origin: str | None = ORIGIN):
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin:
        headers.append((b"origin", origin.encode()))
    if bearer:
        headers.append((b"authorization", f"Bearer {bearer}".encode()))
    return headers


async def _connect(headers, client=("127.0.0.1", 50000)):
    from console.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/v1/events", headers=headers)
    communicator.scope["client"] = client
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, code


async def test_a_socket_from_outside_the_allowlist_is_refused_at_the_handshake(operator_user):
    from asgiref.sync import sync_to_async

    from console.foundation import runtime_settings

    await sync_to_async(runtime_settings.update)({"allowed_networks": "10.0.0.0/8"})
    access = await sync_to_async(tokens.issue_pair)(operator_user)
    communicator, connected, code = await _connect(
        _headers(access["access"], origin=None), client=("192.168.7.9", 50000)
    )
    assert not connected and code == 4403
    await communicator.disconnect()


async def test_a_socket_closes_when_its_token_is_revoked(operator_user, settings):
    from asgiref.sync import sync_to_async

    settings.CONSOLE_WS_RECHECK_SECONDS = 0.1
    pair = await sync_to_async(tokens.issue_pair)(operator_user)
    communicator, connected, _code = await _connect(_headers(pair["access"], origin=None))
    assert connected
    await sync_to_async(tokens.revoke)(pair["refresh"])
    message = await communicator.receive_output(timeout=10)
    assert message == {"type": "websocket.close", "code": 4401}


async def test_a_revoked_token_cannot_act_on_an_open_socket(operator_user):
    from asgiref.sync import sync_to_async

    pair = await sync_to_async(tokens.issue_pair)(operator_user)
    communicator, connected, _code = await _connect(_headers(pair["access"], origin=None))
    assert connected
    await sync_to_async(tokens.revoke)(pair["refresh"])
    await communicator.send_json_to(
        {"terminate": {"port": 9, "pid": os.getpid(), "create_time": 1.0}}
    )
    reply = await communicator.receive_json_from(timeout=10)
    assert reply["status"] == 403 and "revoked" in reply["detail"]
    await communicator.disconnect()


async def test_bad_values_on_a_socket_get_an_error_not_a_crash(operator_user):
    from asgiref.sync import sync_to_async

    pair = await sync_to_async(tokens.issue_pair)(operator_user)
    communicator, connected, _code = await _connect(_headers(pair["access"], origin=None))
    assert connected
    for create_time in ("nan", "inf", "-1", "1e999"):
        await communicator.send_json_to(
            {"terminate": {"port": 9, "pid": 123, "create_time": create_time}}
        )
        reply = await communicator.receive_json_from(timeout=10)
        assert reply["type"] == "error" and reply["status"] == 422, create_time
    await communicator.disconnect()


DROP_PRIVILEGES = textwrap.dedent(
    """
    import os, socket, time
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    # Bound as root (the socket's owner), then running as nobody: the process is nobody's.
    os.setgid(65534)
    os.setuid(65534)
    print(s.getsockname()[1], flush=True)
    time.sleep(3600)
    """
)


@pytest.fixture
def dropped_privileges_child():
    if os.getuid() != 0:
        skip_or_fail("needs root to bind and then drop to another user")
    process = subprocess.Popen(
        [sys.executable, "-c", DROP_PRIVILEGES], stdout=subprocess.PIPE, text=True
    )
    child = Child(process, int(process.stdout.readline()))
    try:
        yield child
    finally:
        child.stop()


def test_terminating_is_judged_by_the_processs_owner_not_the_sockets(
    client, operator_user, admin_user, bearer, dropped_privileges_child
):
    from tests.conftest import wait_until

    child = dropped_privileges_child
    body = {"pid": child.pid, "create_time": child.create_time(), "signal": "TERM"}
    path = f"/api/v1/ports/{child.port}/terminate"

    def post(user):
        return client.post(path, body, content_type="application/json", headers=bearer(user))

    refused = post(operator_user)
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert child.process.poll() is None
    done = post(admin_user)
    assert done.status_code == 200, done.content
    assert wait_until(lambda: child.process.poll() is not None, timeout=20)
