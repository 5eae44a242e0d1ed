"""Websocket routing and its guards: exact Origin, allowed Host, a signed-in user.

Channels' AllowedHostsOriginValidator compares the Origin's host but not its port, so a page
served by any other local dev server (say :3000) could drive this console with the user's
session. We compare scheme, host and port exactly.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import URLPattern, path

if TYPE_CHECKING:
    from asgiref.typing import ASGIApplication
    from django.contrib.auth.models import User

    from console.foundation.gate import Actor, AnyUser
    from console.foundation.tokens import Claims


# What a socket takes from its page or client: JSON text this small; anything larger is refused.
MAX_MESSAGE_BYTES = 4096


def json_object(text_data: str | None) -> dict | None:
    """The JSON object a page sent, or None for anything else (empty, too large, not JSON, not an
    object): a page's socket ignores what its own page would never send."""
    if not text_data or len(text_data) > MAX_MESSAGE_BYTES:
        return None
    try:
        message = json.loads(text_data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


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
        host_allowed = bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)
        # A script authenticating with a bearer token sends no Origin; a browser always does.
        if origin is None:
            allowed = host_allowed and _header(scope, b"authorization") is not None
        else:
            allowed = host_allowed and origin in expected_origins(scope)
        if not host_allowed:
            reason = "foreign Host"
        elif origin is None:
            reason = "no Origin and no bearer token"
        else:
            reason = "Origin not this console"
        if allowed and not await _address_allowed(client_address(scope)):
            # The network allowlist holds for sockets as for pages: refused before any credential.
            allowed, reason = False, "network not allowed"
        if not allowed:
            await record_refusal(scope, reason)
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
    from console.foundation import audit

    # No credential was accepted: folded per address, path and minute like anonymous HTTP.
    audit.record_refusal_folded(
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
def _address_allowed(address: str | None) -> bool:
    from console.foundation import runtime_settings

    return runtime_settings.address_allowed(address)


@database_sync_to_async
def _user_for_bearer(header: str) -> tuple[User, Claims] | None:
    """(user, verified claims), or None when the header holds no live bearer token."""
    from console.foundation import tokens

    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return tokens.verify_bearer(token.strip())
    except tokens.InvalidToken:
        return None


async def authenticate(scope, *, allow_bearer: bool) -> tuple[AnyUser | None, str | None]:
    """(user, token scope) for a handshake, or (None, None).

    A bearer header, when present, is the only credential looked at: a script's failed token
    never falls back to a cookie. The session counts only when the Origin was verified, so a
    cross-site page can never ride on it.
    """
    header = _header(scope, b"authorization")
    if header is not None:
        verified = await _user_for_bearer(header) if allow_bearer else None
        if verified is None:
            await record_refusal(scope, "bad or unaccepted bearer token")
            return None, None
        user, claims = verified
        # Kept for the gate: every later message asks again whether this token still holds.
        scope["portside_token_claims"] = claims
        return user, claims.get("scope") or "read"
    user = scope.get("user")
    if scope.get("origin_verified") and user is not None and user.is_authenticated:
        return user, None
    await record_refusal(scope, "not signed in")
    return None, None


def actor_for(scope, user: AnyUser | None, token_scope: str | None) -> Actor:
    """The gate's Actor for a socket: its token's claims, or its session, and its address."""
    from console.foundation import gate

    claims = scope.get("portside_token_claims")
    session = scope.get("session")
    return gate.Actor(
        user=user,
        scope=token_scope,
        via=gate.WEBSOCKET,
        address=client_address(scope),
        token=claims,
        session_key=None if claims is not None else getattr(session, "session_key", None),
    )


async def refused(
    scope, user: AnyUser | None, token_scope: str | None, role: str, action: str
) -> str | None:
    """The gate, asked again for each action message: user active, token or session live,
    address allowed, role and scope. The reason (after auditing it), or None when allowed."""
    from django.core.exceptions import PermissionDenied

    from console.foundation import gate

    def decide() -> str | None:
        try:
            gate.authorize(actor_for(scope, user, token_scope), role, action)
        except PermissionDenied as error:
            return str(error)
        return None

    return await database_sync_to_async(decide)()


async def still_allowed(
    scope, user: AnyUser | None, token_scope: str | None, role: str | None = None
) -> str | None:
    """Why an open socket must close now (session ended, token expired or revoked, user
    deactivated or no longer of `role`, address no longer allowed), or None."""
    from console.foundation import gate
    from console.foundation.roles import VIEWER

    return await database_sync_to_async(gate.refusal)(
        actor_for(scope, user, token_scope), role or VIEWER
    )


async def watch_rights(
    consumer,
    user: AnyUser | None,
    token_scope: str | None,
    close_code: int,
    role: str | None = None,
) -> None:
    """Close `consumer` once its rights lapse: a socket must not outlive a sign-out, a revoked
    or expired token, a deactivated user or (for an admin's page) a lost role. Runs as a task
    for as long as the socket is open."""
    import asyncio

    from django.conf import settings

    while True:
        await asyncio.sleep(max(0.1, settings.CONSOLE_WS_RECHECK_SECONDS))
        if await still_allowed(consumer.scope, user, token_scope, role) is not None:
            await consumer.close(code=close_code)
            return


def websocket_path(route: str, consumer: ASGIApplication) -> URLPattern:
    """A websocket route to a consumer (`Consumer.as_asgi()`), for Channels' URLRouter."""
    # URLRouter takes Django's own `path`, whose stub expects an HTTP view.
    return path(route, consumer)  # type: ignore[arg-type]


def guarded(urlpatterns: list):
    """The websocket stack: Host and Origin guard, session auth, then the consumers' routes."""
    return HostAndOriginGuard(AuthMiddlewareStack(URLRouter(urlpatterns)))
