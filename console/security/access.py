"""Role checks for pages, the API and websockets: one rule (`roles.has_role`), three doorways.

Each refusal writes an audit entry naming who, what and the role it needed; the console-wide
AuthorizationAuditMiddleware adds one for every other 401/403 response (CSRF, the network
allowlist, an unauthenticated API call).
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied

from console import audit
from console.security.roles import has_role


def _deny(request, user, role: str, action: str, scope: str | None = None) -> None:
    if request is not None:
        request.authorization_audited = True
    audit.record(
        action or "authz.denied",
        request=request,
        user=user,
        target=getattr(request, "path", ""),
        outcome="forbidden",
        needed=role,
        scope=scope or "",
    )
    raise PermissionDenied(f"this needs the {role} role")


def require_role(role: str, action: str = ""):
    """View decorator: a signed-in user below `role` gets 403 (the login middleware runs first)."""

    def decorate(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not has_role(request.user, role):
                _deny(request, request.user, role, action)
            return view(request, *args, **kwargs)

        return guarded

    return decorate


def require_api_role(request, role: str, action: str = "") -> None:
    """For ninja endpoints: the bearer's role capped by its token's scope."""
    scope = getattr(request, "token_scope", None)
    user = getattr(request, "auth", None) or request.user
    if not has_role(user, role, scope):
        _deny(request, user, role, action, scope)


def socket_permits(user, scope: str | None, role: str, action: str, address=None) -> bool:
    """For consumers (sync; wrap in database_sync_to_async): False after auditing a refusal."""
    if has_role(user, role, scope):
        return True
    audit.record(
        action or "authz.denied",
        user=user,
        address=address,
        outcome="forbidden",
        needed=role,
        scope=scope or "",
        via="websocket",
    )
    return False
