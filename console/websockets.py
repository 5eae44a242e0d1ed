"""Websocket routing and its guards: exact Origin, allowed Host, a signed-in user.

Channels' AllowedHostsOriginValidator compares the Origin's host but not its port, so a page
served by any other local dev server (say :3000) could drive this console with the user's
session. We compare scheme, host and port exactly.
"""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
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
        await self.app(scope, receive, send)


def websocket_application():
    from console.routing import websocket_urlpatterns

    return HostAndOriginGuard(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
