"""Bearer authentication for the JSON API, and `Needs`: an endpoint's least role, at the gate.

Its own module so that every app's API can import it without importing the API that mounts them.
"""

from __future__ import annotations

from ninja.security import HttpBearer

from console.foundation import gate, tokens


class JWTBearer(HttpBearer):
    """Access tokens from the Authorization header only; `?token=` is never read."""

    def authenticate(self, request, token: str):
        try:
            user, claims = tokens.verify_bearer(token)
        except tokens.InvalidToken:
            return None
        request.user = user
        request.token_claims = claims
        request.token_scope = claims.get("scope") or "read"
        return user


class Needs(JWTBearer):
    """An endpoint's least role, decided by the gate before ninja parses the body.

    `auth=Needs(OPERATOR, "check.create")`: a viewer's POST is a 403 whatever its body holds,
    never a 422 that tells them how to phrase a request they may not make. Rights that depend
    on the body (a command check needs admin) are decided again by the service function.
    """

    def __init__(self, role: str, action: str):
        super().__init__()
        self.role, self.action = role, action

    def authenticate(self, request, token: str):
        user = super().authenticate(request, token)
        if user is not None:
            gate.authorize(user, self.role, self.action, request=request)
        return user
