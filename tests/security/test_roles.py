"""One role rule in pages, API and websocket actions: a viewer reads, a `read` token reads."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from console.asgi import application
from console.foundation import tokens
from console.foundation.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


def _terminate_body(child) -> dict:
    return {"pid": child.pid, "create_time": child.create_time(), "signal": "TERM"}


def test_it_stops_a_viewer_terminating_from_the_page(client, viewer_user, listening_child):
    child = listening_child()
    client.force_login(viewer_user)
    response = client.post(f"/ports/{child.port}/terminate/", _terminate_body(child))
    assert response.status_code == 403
    assert child.process.poll() is None


def test_it_stops_a_viewer_and_a_read_token_terminating_through_the_api(
    api, viewer_user, admin_user, listening_child, personal_token
):
    child = listening_child()
    path = f"/api/v1/ports/{child.port}/terminate"
    viewer_access = tokens.issue_pair(viewer_user)["access"]
    assert api("post", path, viewer_access, _terminate_body(child)).status_code == 403
    _record, read_token = personal_token(admin_user, ["read"])
    assert api("post", path, read_token, _terminate_body(child)).status_code == 403
    assert child.process.poll() is None
    assert AuditEntry.objects.filter(action="port.terminate", outcome="forbidden").count() == 2


@pytest.mark.parametrize("who", ["viewer", "read-token"])
async def test_it_stops_a_viewer_terminating_over_the_websocket(
    who, viewer_user, admin_user, listening_child
):
    from asgiref.sync import sync_to_async

    child = await sync_to_async(listening_child)()
    if who == "viewer":
        raw = (await sync_to_async(tokens.issue_pair)(viewer_user))["access"]
    else:
        _record, raw = await sync_to_async(tokens.issue_personal)(admin_user, "ro", ["read"], 1)
    communicator = WebsocketCommunicator(
        application,
        "/ws/v1/events",
        headers=[(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {raw}".encode())],
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"terminate": {"port": child.port, **_terminate_body(child)}})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["type"] == "error" and reply["status"] == 403
    await communicator.disconnect()
    assert child.process.poll() is None
    assert await AuditEntry.objects.filter(
        action="port.terminate", outcome="forbidden", detail__via="websocket"
    ).aexists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/account/tokens/"),
        ("post", "/account/tokens/"),
        ("get", "/security/"),
        ("post", "/security/"),
        ("get", "/audit/"),
        ("get", "/users/"),
        ("post", "/users/1/"),
    ],
)
def test_it_refuses_a_viewer_on_token_and_admin_pages(client, viewer_user, method, path):
    client.force_login(viewer_user)
    response = getattr(client, method)(path)
    assert response.status_code == 403
    assert b"Not allowed" in response.content


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/auth/tokens", None),
        ("post", "/api/v1/auth/tokens", {"name": "x", "scopes": ["read"], "expires_in_days": 1}),
        ("delete", "/api/v1/auth/tokens/1", None),
        ("get", "/api/v1/security/settings", None),
        ("patch", "/api/v1/security/settings", {"lockout_failures": 50}),
        ("get", "/api/v1/security/posture", None),
        ("get", "/api/v1/audit", None),
    ],
)
def test_it_refuses_a_viewer_on_token_and_admin_api_calls(api, viewer_user, method, path, body):
    access = tokens.issue_pair(viewer_user)["access"]
    assert api(method, path, access, body).status_code == 403


def test_it_lets_an_operator_keep_tokens_but_not_security(client, operator_user):
    client.force_login(operator_user)
    assert client.get("/account/tokens/").status_code == 200
    assert client.get("/security/").status_code == 403


def test_it_lets_an_admin_manage_users(client, admin_user):
    client.force_login(admin_user)
    created = client.post("/users/", {"username": "newbie", "role": "viewer", "password": ""})
    assert created.status_code == 200 and b"/login/link/" in created.content
    from django.contrib.auth import get_user_model

    newbie = get_user_model().objects.get(username="newbie")
    changed = client.post(f"/users/{newbie.pk}/", {"role": "operator", "active": "on"})
    assert changed.status_code == 302
    from console.foundation.roles import role_of

    assert role_of(newbie) == "operator"
    assert AuditEntry.objects.filter(action="user.change", target="newbie").exists()


def test_it_makes_a_new_user_a_viewer(admin_user):
    from django.contrib.auth import get_user_model

    from console.foundation.roles import role_of

    assert role_of(get_user_model().objects.create_user("fresh", password="x" * 12)) == "viewer"
