"""The page doorway to the gate: a view decorator. Every decision is `gate.authorize`'s.

The console-wide AuthorizationAuditMiddleware adds an audit entry for every other 401/403
response (CSRF, the network allowlist, an unauthenticated API call).
"""

from __future__ import annotations

from functools import wraps
from typing import TYPE_CHECKING

from console.foundation import gate
from console.foundation.htmx import HtmxHttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class SignedInRequest(HtmxHttpRequest):
    """The request of a page only an account reaches (behind `require_role`, or one the login
    middleware does not exempt): its `user` is never AnonymousUser. Only a type."""

    user: User


def require_role(role: str, action: str):
    """View decorator: a signed-in user below `role` gets 403 (the login middleware runs first)."""

    def decorate(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            gate.authorize(request.user, role, action, request=request)
            return view(request, *args, **kwargs)

        return guarded

    return decorate
