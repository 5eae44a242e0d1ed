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
            await receive()  # the websocket.connect message
            await send({"type": "websocket.close", "code": 4403})
            return
        scope = {**scope, "origin_verified": origin is not None}
        await self.app(scope, receive, send)


@database_sync_to_async
def _user_for_bearer(header: str):
    from console import tokens

    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None, None
    try:
        claims = tokens.decode(token.strip(), tokens.ACCESS)
        return tokens.user_for(claims), claims.get("scope")
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
        return await _user_for_bearer(header) if allow_bearer else (None, None)
    user = scope.get("user")
    if scope.get("origin_verified") and user is not None and user.is_authenticated:
        return user, None
    return None, None


def websocket_application():
    from console.routing import websocket_urlpatterns

    return HostAndOriginGuard(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
