"""Websocket routing and its guards: exact Origin, allowed Host, a signed-in user.

Channels' AllowedHostsOriginValidator compares the Origin's host but not its port, so a page
served by any other local dev server (say :3000) could drive this console with the user's
session. We compare scheme, host and port exactly.
"""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from django.conf import settings
from django.http.request import split_domain_port, validate_host


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def expected_origins(scope) -> set[str]:
    host = _header(scope, b"host") or ""
    scheme = "https" if scope.get("scheme") in {"wss", "https"} else "http"
    return {f"{scheme}://{host}"}


class HostAndOriginGuard:
    """Refuses the handshake unless Host is allowed and Origin is exactly this console."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        host = _header(scope, b"host") or ""
        domain, _port = split_domain_port(host)
        origin = _header(scope, b"origin")
        allowed = bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)
        # A script authenticating with a bearer token sends no Origin; a browser always does.
        if origin is None:
            allowed = allowed and _header(scope, b"authorization") is not None
        else:
            allowed = allowed and origin in expected_origins(scope)
        if not allowed:
            await record_refusal(scope, "foreign Host" if not domain else "Origin not this console")
            await receive()  # the websocket.connect message
            await send({"type": "websocket.close", "code": 4403})
            return
        scope = {**scope, "origin_verified": origin is not None}
        await self.app(scope, receive, send)


def client_address(scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


@database_sync_to_async
def _record_refusal(scope, reason: str) -> None:
    from console import audit

    audit.record(
        "ws.refused",
        target=scope.get("path", "")[:255],
        outcome="denied",
        address=client_address(scope),
        reason=reason,
    )


async def record_refusal(scope, reason: str) -> None:
    """A refused handshake is a failed authorisation: it goes to the audit log."""
    await _record_refusal(scope, reason)


@database_sync_to_async
def _user_for_bearer(header: str):
    from console import tokens

    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None, None
    try:
        return tokens.authenticate_bearer(token.strip())
    except tokens.InvalidToken:
        return None, None


async def authenticate(scope, *, allow_bearer: bool) -> tuple[object | None, str | None]:
    """(user, token scope) for a handshake, or (None, None).

    A bearer header, when present, is the only credential looked at: a script's failed token
    never falls back to a cookie. The session counts only when the Origin was verified, so a
    cross-site page can never ride on it.
    """
    header = _header(scope, b"authorization")
    if header is not None:
        found = await _user_for_bearer(header) if allow_bearer else (None, None)
        if found[0] is None:
            await record_refusal(scope, "bad or unaccepted bearer token")
        return found
    user = scope.get("user")
    if scope.get("origin_verified") and user is not None and user.is_authenticated:
        return user, None
    await record_refusal(scope, "not signed in")
    return None, None


async def permits(scope, user, token_scope: str | None, role: str, action: str) -> bool:
    """The role check of pages and the API (console.security.access), for a socket's action."""
    from console.security.access import socket_permits

    return await database_sync_to_async(socket_permits)(
        user, token_scope, role, action, address=client_address(scope)
    )


def websocket_application():
    from console.routing import websocket_urlpatterns

    return HostAndOriginGuard(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
