"""Roles: viewer < operator < admin. One mechanism for pages, API and websockets.

A user's role is the highest of their groups (a superuser is an admin). A token's scope caps
what its holder may do through it: `read` acts as viewer, `operate` as operator, `admin` as admin.
"""

from __future__ import annotations

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
SCOPE_ROLE = {"read": VIEWER, "operate": OPERATOR, "admin": ADMIN}
ROLE_SCOPE = {role: scope for scope, role in SCOPE_ROLE.items()}


def rank(role: str | None) -> int:
    return ROLES.index(role) + 1 if role in ROLES else 0


def role_of(user) -> str | None:
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    held = [role for role in ROLES if role in names]
    # A signed-in user with no group is a viewer: a new account can look, not act.
    return held[-1] if held else VIEWER


def has_role(user, needed: str) -> bool:
    """Whether a page shows `user` what `needed` may do; a token's scope is the gate's to judge
    (gate.refusal), as only requests that act come with one."""
    return rank(role_of(user)) >= rank(needed)
