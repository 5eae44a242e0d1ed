"""The one access gate: every privileged action asks `authorize` and nothing else.

A right is decided here, afresh at every action, from five facts: the user is still active,
their role, the token's scope (a token caps its holder), the token or session is still live
(not expired, not revoked, its refresh family not revoked), and the client's address is on the
network allowlist. A refusal writes its audit entry here, so no caller can forget to.

Pages, the API, websocket messages, YAML imports and the command line all reach this module,
either directly or through the service functions in `*/operations.py`. Those functions take
`who`: a signed-in user together with the `scope`/`request` they came with, or an `Actor` that
a websocket consumer built at its handshake (it has no request, but it has a token, a session
and an address that must still hold when a message arrives an hour later).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from console.foundation import audit, runtime_settings
from console.foundation.roles import SCOPE_ROLE, rank, role_of

if TYPE_CHECKING:  # the auth models cannot be imported before the app registry is ready
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest

    from console.foundation.tokens import Claims

    # A signed-in account, or the visitor who is not signed in: what `request.user` holds.
    AnyUser = AbstractBaseUser | AnonymousUser

PAGE, API, WEBSOCKET, CLI = "page", "api", "websocket", "cli"


class Refused(PermissionDenied):
    """A 403 whose message says which of the five facts failed, in words a person can act on."""


@dataclass(frozen=True)
class Actor:
    """Who is acting, and through what: enough to decide a right again later."""

    user: AnyUser | None
    scope: str | None = None  # a token's scope; None for a browser session or the CLI
    via: str = PAGE
    address: str | None = None
    token: Claims | None = field(default=None, repr=False)  # the verified claims of the bearer
    session_key: str | None = field(default=None, repr=False)
    request: HttpRequest | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, who: Who, *, scope: str | None = None, request: HttpRequest | None = None) -> Actor:
        """An Actor from what a caller has: an Actor, or a user with its request and scope."""
        if isinstance(who, Actor):
            return who
        if request is not None:
            actor = for_request(request)
            user = who if who is not None else actor.user
            return replace(actor, user=user, scope=scope if scope is not None else actor.scope)
        # No request: the command line, or code acting for a user it already trusts.
        return cls(user=who, scope=scope, via=CLI)

    @property
    def username(self) -> str:
        user = self.user
        return user.get_username() if user is not None and user.is_authenticated else ""


if TYPE_CHECKING:
    # Who a service function is told acts: a user, with the `scope` and `request` it came with,
    # or an Actor that a websocket consumer built at its handshake.
    Who = Actor | AnyUser | None


def for_request(request: HttpRequest) -> Actor:
    """The Actor behind an HTTP request: a bearer's token and scope, or the browser session."""
    claims = getattr(request, "token_claims", None)
    user = getattr(request, "auth", None) or getattr(request, "user", None)
    session = getattr(request, "session", None)
    return Actor(
        user=user,
        scope=getattr(request, "token_scope", None),
        via=API if claims is not None or request.path.startswith("/api/") else PAGE,
        address=audit.client_address(request),
        token=claims,
        session_key=None if claims is not None else getattr(session, "session_key", None),
        request=request,
    )


def refusal(actor: Actor, needed: str) -> str | None:
    """Why `actor` may not act as `needed` now, or None when it may."""
    user = actor.user
    if user is None or not user.is_authenticated:
        return "sign in first"
    # Read afresh: a websocket's user object is as old as its handshake.
    fresh = get_user_model().objects.filter(pk=user.pk).first()
    if fresh is None or not fresh.is_active:
        return "this account is deactivated"
    if actor.token is not None and not _verified_by_this_request(actor):
        from console.foundation import tokens

        if not tokens.still_live(actor.token, fresh):
            return "this token has expired or was revoked"
    elif actor.session_key is not None and actor.via == WEBSOCKET and not _session_live(actor):
        return "this session has ended; sign in again"
    if actor.via != CLI and not runtime_settings.address_allowed(actor.address):
        return f"your network ({actor.address or 'unknown address'}) is not allowed"
    role = role_of(fresh)
    if rank(role) < rank(needed):
        return f"this needs the {needed} role (you are {role or 'not signed in'})"
    if actor.scope is not None and rank(SCOPE_ROLE.get(actor.scope)) < rank(needed):
        # The holder could, the token can't: name the token, not the person.
        return f"this token's scopes ({actor.scope}) do not include {_scope_for(needed)}"
    return None


def _verified_by_this_request(actor: Actor) -> bool:
    """The API's bearer check verified these very claims for this request a moment ago
    (console.api_auth); a socket's claims are as old as its handshake and are checked again."""
    request = actor.request
    return request is not None and getattr(request, "token_claims", None) is actor.token


def _scope_for(role: str) -> str:
    from console.foundation.roles import ROLE_SCOPE

    return ROLE_SCOPE.get(role, role)


def _session_live(actor: Actor) -> bool:
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore(session_key=actor.session_key)
    # A missing or expired session loads as empty; a different user's would not match.
    return str(store.get(SESSION_KEY, "")) == str(getattr(actor.user, "pk", ""))


def authorize(
    who: Who,
    needed: str,
    action: str,
    *,
    target: str = "",
    scope: str | None = None,
    request: HttpRequest | None = None,
) -> Actor:
    """The Actor when it may act as `needed`; otherwise audit the refusal and raise Refused."""
    actor = Actor.of(who, scope=scope, request=request)
    reason = refusal(actor, needed)
    if reason is None:
        return actor
    if actor.request is not None:
        # The request-wide audit middleware must not write a second row for this refusal.
        # A flag of this project's on the request, which HttpRequest does not declare.
        actor.request.authorization_audited = True  # type: ignore[attr-defined]
    audit.record(
        action or "authz.denied",
        request=actor.request,
        user=actor.user if actor.username else None,
        address=actor.address,
        target=str(target or getattr(actor.request, "path", ""))[:255],
        outcome="forbidden",
        needed=needed,
        scope=actor.scope or "",
        via=actor.via,
        reason=reason,
    )
    raise Refused(reason)


def allows(
    who: Who, needed: str, *, scope: str | None = None, request: HttpRequest | None = None
) -> bool:
    """Whether `who` could act as `needed` (to show or hide a button); audits nothing."""
    return refusal(Actor.of(who, scope=scope, request=request), needed) is None
