"""The first-run account and one-time sign-in links, shared by `serve` and `signin_link`."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from console.security.models import SignInLink


def account_needing_link():
    """The admin to print a link for: a new one on an empty database, or one with no password.

    Returns (user, created) or (None, False) when someone can already sign in with a password.
    """
    users = get_user_model().objects
    if not users.exists():
        return users.create_superuser(username="admin", email="", password=None), True
    admins = users.filter(is_superuser=True, is_active=True).order_by("pk")
    if any(admin.has_usable_password() for admin in admins):
        return None, False
    return admins.first(), False


def sign_in_url(base_url: str, user) -> str:
    return f"{base_url.rstrip('/')}/login/link/{SignInLink.issue(user)}/"


def browser_host(host: str) -> str:
    """The host a person types for a bind address: 0.0.0.0 and :: are not addresses to visit."""
    if host in {"0.0.0.0", ""}:
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
