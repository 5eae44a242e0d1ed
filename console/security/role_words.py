"""Each role as a person reads it: "viewer (read only)", and what it may do (DESIGN.md's trust
boundaries). The user menu, the Users page, the 403 page and the role choices all say it so."""

from __future__ import annotations

from console.foundation.roles import ADMIN, OPERATOR, VIEWER

ROLE_WORDS = {
    ADMIN: "admin (administrator)",
    OPERATOR: "operator",
    VIEWER: "viewer (read only)",
}
ROLE_POWERS = {
    ADMIN: "reads, runs and stops, and administers users, tokens, channels and settings",
    OPERATOR: "reads, runs, pauses and stops local things, and edits ports, projects and checks",
    VIEWER: "reads everything, changes nothing",
}


def role_words(role: str | None) -> str:
    """The role in words; anything that is not a role (e.g. "inactive") stays as it is."""
    return ROLE_WORDS.get(role or "", role or "")


def role_powers(role: str | None) -> str:
    return ROLE_POWERS.get(role or "", "")
