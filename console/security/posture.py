"""The posture page: pass / warn / fail items, each with the fix, from what this console knows.

Includes the results of Django's `check --deploy` that apply: the HTTPS ones only when the
console serves beyond loopback (on 127.0.0.1 there is no network to protect a cookie from).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.utils import timezone
from django.utils.csp import CSP

from console.foundation import runtime_settings
from console.foundation.models import PersonalToken
from console.security import exposures
from console.security.models import PasswordCheck

PASS, WARN, FAIL = "pass", "warn", "fail"
HTTPS_CHECKS = {
    "security.W004",
    "security.W008",
    "security.W012",
    "security.W016",
    "security.W021",
}
# Ours covers it in words that fit a local console, or it cannot apply (no proxy, no HSTS on
# a self-signed certificate).
SKIPPED_CHECKS = {"security.W018", "security.W020"}
LONG_ADMIN_TOKEN = timedelta(days=30)
NONCE_SHOWN = "'nonce-…' (new each response)"


@dataclass(frozen=True)
class Item:
    key: str
    status: str
    title: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def bind_address() -> tuple[str, str]:
    """(host the console is bound to, where that came from)."""
    bound = os.environ.get("CONSOLE_BOUND", "")
    if bound:
        host = bound.rsplit(":", 1)[0].strip("[]")
        return host, os.environ.get("CONSOLE_BIND_SOURCE", "serve")
    return "", "not serving (tests or a management command)"


def _beyond_loopback(host: str) -> bool:
    if not host:
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host not in ("localhost",)


def _bind_items() -> list[Item]:
    host, source = bind_address()
    exposed = _beyond_loopback(host) or settings.LAN_MODE
    items = []
    if not exposed:
        items.append(Item("bind", PASS, "Bound to loopback", f"{host or '127.0.0.1'} ({source})"))
    elif not settings.CONSOLE_TLS:
        items.append(
            Item(
                "bind",
                FAIL,
                "Bound beyond loopback without TLS",
                f"{host} ({source}): passwords and tokens cross the network in clear text.",
                "Serve with `serve --lan --tls` (a given or generated certificate).",
            )
        )
    else:
        items.append(Item("bind", PASS, "Bound beyond loopback with TLS", f"{host} ({source})"))
    networks, where = runtime_settings.allowed_networks()
    if exposed and not networks:
        items.append(
            Item(
                "networks",
                WARN,
                "No network allowlist",
                "Any address that reaches this machine may try to sign in.",
                "Set allowed networks on the Security page or CONSOLE_ALLOWED_NETWORKS.",
            )
        )
    elif networks:
        items.append(Item("networks", PASS, "Network allowlist", f"{networks} ({where})"))
    return items


def _account_items() -> list[Item]:
    users = get_user_model().objects.filter(is_active=True)
    admins = [user for user in users.prefetch_related("groups") if _is_admin(user)]
    items = []
    weak = PasswordCheck.objects.filter(user__in=admins, weak=True).select_related("user")
    if weak:
        names = ", ".join(check.user.get_username() for check in weak)
        items.append(
            Item(
                "admin-passwords",
                FAIL,
                "Admin with a weak password",
                f"{names}: the password failed the validators when it was set.",
                "Change it under Account → Password (at least 8 characters, not common).",
            )
        )
    else:
        items.append(Item("admin-passwords", PASS, "Admin passwords", "none known to be weak"))
    if not any(admin.has_usable_password() for admin in admins):
        items.append(
            Item(
                "admin-usable",
                WARN,
                "No admin can sign in with a password",
                "Only one-time links work until an admin sets a password.",
                "Run `python manage.py signin_link` and set a password.",
            )
        )
    # JSON "contains" is not available on SQLite: the few live tokens are filtered here.
    long_lived = sum(
        1
        for scopes in PersonalToken.objects.filter(
            revoked_at__isnull=True, expires_at__gt=timezone.now() + LONG_ADMIN_TOKEN
        ).values_list("scopes", flat=True)
        if "admin" in scopes
    )
    if long_lived:
        items.append(
            Item(
                "admin-tokens",
                WARN,
                "Long-lived tokens with admin scope",
                f"{long_lived} personal token(s) with admin scope live longer than 30 days.",
                "Revoke them on the Tokens page and issue narrower or shorter ones.",
            )
        )
    else:
        items.append(Item("admin-tokens", PASS, "Admin-scope tokens", "none living beyond 30 days"))
    return items


def _is_admin(user) -> bool:
    from console.foundation.roles import ADMIN, role_of

    return role_of(user) == ADMIN


def _settings_items() -> list[Item]:
    prefs = runtime_settings.current()
    items = [
        Item(
            "debug",
            FAIL,
            "DEBUG is on",
            "Error pages show settings and source.",
            "Unset CONSOLE_DEBUG.",
        )
        if settings.DEBUG
        else Item("debug", PASS, "DEBUG is off", "error pages show nothing internal"),
        Item(
            "access-lifetime",
            WARN if prefs.access_token_minutes > 15 else PASS,
            "Access token lifetime",
            f"{prefs.access_token_minutes} minutes",
            "15 minutes or less (Security settings)." if prefs.access_token_minutes > 15 else "",
        ),
        Item(
            "refresh-lifetime",
            WARN if prefs.refresh_token_days > 30 else PASS,
            "Refresh token lifetime",
            f"{prefs.refresh_token_days} days",
            "30 days or less (Security settings)." if prefs.refresh_token_days > 30 else "",
        ),
    ]
    if settings.LAN_MODE and prefs.command_checks:
        items.append(
            Item(
                "command-checks",
                WARN,
                "Command checks on in LAN mode",
                "An admin's session from the LAN can run programs on this machine.",
                "Turn command checks off in Security settings unless you need them.",
            )
        )
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        items.append(
            Item(
                "root",
                WARN,
                "Running as root",
                "A flaw in the console would be a flaw with root's rights; terminate can "
                "signal any process.",
                "Run it as your own user (serve refuses root unless --allow-root).",
            )
        )
    if "*" in settings.ALLOWED_HOSTS:
        items.append(
            Item(
                "hosts",
                FAIL,
                "Any Host header accepted",
                "DNS rebinding is possible.",
                "Remove '*'.",
            )
        )
    return items


def _deploy_items(exposed: bool) -> list[Item]:
    items = []
    for message in checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security]):
        if message.id in SKIPPED_CHECKS or (message.id in HTTPS_CHECKS and not exposed):
            continue
        status = FAIL if message.level >= checks.ERROR else WARN
        text = str(message.msg).split("\n")[0]
        items.append(
            Item(
                message.id or "check",
                status,
                f"check --deploy {message.id}",
                text,
                message.hint or "",
            )
        )
    return items


def exposure_items(audit: exposures.Audit | None) -> list[Item]:
    """The posture's exposure row, for the page and for the live watch's push."""
    if audit is None:
        return [
            Item(
                "exposures",
                WARN,
                "Exposure audit",
                "not run in the last 30 s",
                "Open the Security page.",
            )
        ]
    dangers = audit.dangers
    if dangers:
        ports = ", ".join(str(finding.port) for finding in dangers)
        return [
            Item(
                "exposures",
                FAIL,
                "Dangerous listeners on this machine",
                f"ports {ports}",
                "See the exposure audit below for each fix.",
            )
        ]
    return [Item("exposures", PASS, "Exposure audit", "no dangerous listener found")]


def assess() -> list[Item]:
    host, _source = bind_address()
    exposed = _beyond_loopback(host) or settings.LAN_MODE
    return [
        *_bind_items(),
        *_account_items(),
        *_settings_items(),
        *exposure_items(exposures.cached()),
        *_deploy_items(exposed),
    ]


def fixed_settings() -> list[tuple[str, str]]:
    """What cannot change at run time, shown beside the editable settings."""
    host, source = bind_address()
    # The nonce is a placeholder until a response fills it in: show it as what it becomes.
    csp = "; ".join(
        f"{key} {' '.join(NONCE_SHOWN if value == CSP.NONCE else value for value in values)}"
        for key, values in settings.SECURE_CSP.items()
    )
    return [
        ("Bind address", f"{host or 'not serving'} (from {source})"),
        ("LAN mode", "on" if settings.LAN_MODE else "off"),
        (
            "Check networks (CONSOLE_CHECK_NETWORKS)",
            settings.CONSOLE_CHECK_NETWORKS.strip() or "none: this machine only",
        ),
        ("Allowed hosts", ", ".join(settings.ALLOWED_HOSTS)),
        ("HTTPS", "on (serve --tls)" if settings.CONSOLE_TLS else "off"),
        ("Content-Security-Policy", csp),
        (
            "Session cookie",
            f"HttpOnly, SameSite={settings.SESSION_COOKIE_SAMESITE}"
            + (", Secure" if settings.SESSION_COOKIE_SECURE else ""),
        ),
    ]
