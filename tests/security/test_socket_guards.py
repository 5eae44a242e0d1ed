"""The websocket handshake guard and what a socket's gate is told, against the guard itself.

Each refused handshake is audited with why (foreign Host, Origin, network) and from where; a
console behind TLS expects its https Origin; a socket's actor carries the session that must
stay signed in, or the token that must stay live.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async

from console.foundation import gate
from console.foundation.models import AuditEntry
from console.foundation.websockets import (
    MAX_MESSAGE_BYTES,
    HostAndOriginGuard,
    actor_for,
    json_object,
)

pytestmark = pytest.mark.django_db(transaction=True)


class _Inner:
    """The app behind the guard: records that a handshake got through."""

    def __init__(self):
        self.scopes: list[dict] = []

    async def __call__(self, scope, receive, send):
        self.scopes.append(scope)


async def _handshake(*, host="127.0.0.1:8000", origin=None, scheme="ws", client="127.0.0.1"):
    inner = _Inner()
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    scope = {
        "type": "websocket",
        "path": "/ws/v1/events",
        "scheme": scheme,
        "headers": headers,
        "client": (client, 50000),
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    await HostAndOriginGuard(inner)(scope, receive, send)
    return inner.scopes, sent


@pytest.mark.parametrize(
    ("handshake", "reason"),
    [
        ({"host": "evil.test", "origin": "http://evil.test"}, "foreign Host"),
        ({"origin": "http://evil.test"}, "Origin not this console"),
        ({}, "no Origin and no bearer token"),
        ({"origin": "http://127.0.0.1:8000", "client": "10.1.2.3"}, "network not allowed"),
    ],
)
async def test_a_refused_handshake_is_closed_and_audited_with_why_and_from_where(
    monkeypatch, handshake, reason
):
    monkeypatch.setenv("CONSOLE_ALLOWED_NETWORKS", "127.0.0.0/8")
    passed, sent = await _handshake(**handshake)
    assert passed == [] and sent == [{"type": "websocket.close", "code": 4403}]
    entry = await sync_to_async(AuditEntry.objects.get)(action="ws.refused")
    assert entry.detail["reason"] == reason
    assert entry.address == handshake.get("client", "127.0.0.1")
    assert entry.target == "/ws/v1/events" and entry.outcome == "denied"


@pytest.mark.parametrize(
    ("scheme", "origin", "passes"),
    [
        ("wss", "https://127.0.0.1:8000", True),
        ("wss", "http://127.0.0.1:8000", False),
        ("ws", "http://127.0.0.1:8000", True),
        ("ws", "https://127.0.0.1:8000", False),
    ],
)
async def test_a_console_behind_tls_expects_its_https_origin(scheme, origin, passes):
    passed, _sent = await _handshake(scheme=scheme, origin=origin)
    assert bool(passed) is passes
    if passes:
        assert passed[0]["origin_verified"] is True


def test_a_message_of_the_size_limit_is_read_and_one_byte_more_is_not():
    filler = MAX_MESSAGE_BYTES - len('{"q": ""}')
    at_limit = '{"q": "' + "x" * filler + '"}'
    assert len(at_limit) == MAX_MESSAGE_BYTES
    assert json_object(at_limit) == {"q": "x" * filler}
    assert json_object(at_limit[:-2] + 'x"}') is None
    assert json_object("") is None and json_object("[1]") is None
    assert json_object(None) is None  # a binary frame carries no text


def test_a_session_sockets_actor_carries_its_session_and_address(viewer_user):
    scope = {"session": SimpleNamespace(session_key="abc123"), "client": ("10.0.0.9", 4000)}
    actor = actor_for(scope, viewer_user, None)
    assert (actor.user, actor.via, actor.address) == (viewer_user, gate.WEBSOCKET, "10.0.0.9")
    assert actor.session_key == "abc123" and actor.token is None and actor.scope is None


def test_a_token_sockets_actor_carries_its_claims_and_no_session(viewer_user):
    claims = {"typ": "access", "scope": "read"}
    scope = {
        "session": SimpleNamespace(session_key="abc123"),
        "portside_token_claims": claims,
        "client": ("10.0.0.9", 4000),
    }
    actor = actor_for(scope, viewer_user, "read")
    assert actor.token == claims and actor.session_key is None and actor.scope == "read"


def test_a_socket_without_a_session_has_an_actor_with_none(viewer_user):
    # A websocket reached without the session middleware (or with none to load).
    actor = actor_for({"client": ("127.0.0.1", 4000)}, viewer_user, None)
    assert actor.session_key is None and actor.token is None


async def test_an_open_socket_keeps_its_rights_and_loses_what_its_token_lacks(
    admin_user, personal_token
):
    from console.foundation import tokens
    from console.foundation.roles import OPERATOR
    from console.foundation.websockets import still_allowed

    _record, raw = await sync_to_async(personal_token)(admin_user, ["read"])
    claims = tokens.decode(raw, tokens.PERSONAL)
    scope = {"portside_token_claims": claims, "client": ("127.0.0.1", 4000)}
    # The admin's read token may watch (viewer) for as long as it is live...
    assert await still_allowed(scope, admin_user, "read") is None
    # ...and may not hold a socket that needs an operator: the token's scope, not the person.
    reason = await still_allowed(scope, admin_user, "read", OPERATOR)
    assert reason == "this token's scopes (read) do not include operate"


async def test_the_websocket_stack_guards_then_authenticates_then_routes():
    # Built afresh, as console.asgi builds it at import: Host and Origin guard, session auth,
    # the consumers' routes.
    from channels.testing import WebsocketCommunicator

    from console.foundation.websockets import guarded
    from console.routing import websocket_urlpatterns

    stack = guarded(websocket_urlpatterns)
    own = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]
    # Past the guard, a signed-out socket reaches the ports consumer, which refuses it.
    communicator = WebsocketCommunicator(stack, "/ws/ports/", headers=own)
    connected, _code = await communicator.connect(timeout=10)
    assert not connected
    refusal = await sync_to_async(AuditEntry.objects.get)(action="ws.refused")
    assert (refusal.target, refusal.detail["reason"]) == ("/ws/ports/", "not signed in")
    # A foreign Host stops at the guard.
    foreign = [(b"host", b"evil.example"), (b"origin", b"http://evil.example")]
    communicator = WebsocketCommunicator(stack, "/ws/ports/", headers=foreign)
    connected, _code = await communicator.connect(timeout=10)
    assert not connected
    assert await sync_to_async(
        AuditEntry.objects.filter(action="ws.refused", detail__reason="foreign Host").exists
    )()
