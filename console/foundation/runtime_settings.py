"""The security settings an admin edits at run time, and the fixed ones they are shown beside.

One row (SecuritySettings, pk 1), read fresh by every code path that needs it: the console is
small, a primary-key read costs well under a millisecond, and nothing can serve a stale value
after an admin tightens a setting.
"""

from __future__ import annotations

import ipaddress
import os

from django.conf import settings
from django.db import IntegrityError

from console.foundation.models import SecuritySettings

# What an admin may set: (low, high) per numeric field, so a typo cannot lock everyone out or
# make an access token live for a year.
LIMITS = {
    "access_token_minutes": (1, 60),
    "refresh_token_days": (1, 90),
    "personal_token_max_days": (1, 365),
    "lockout_failures": (3, 100),
    "lockout_username_failures": (5, 1000),
    "lockout_minutes": (1, 24 * 60),
}
EDITABLE = (*LIMITS, "allowed_networks", "check_networks", "command_checks")
NETWORK_FIELDS = ("allowed_networks", "check_networks")


def _defaults() -> dict:
    return {
        "access_token_minutes": max(1, settings.JWT_ACCESS_SECONDS // 60),
        "refresh_token_days": max(1, settings.JWT_REFRESH_SECONDS // 86400),
        "command_checks": bool(getattr(settings, "CONSOLE_ALLOW_COMMAND_CHECKS", False)),
    }


def current() -> SecuritySettings:
    row = SecuritySettings.objects.filter(pk=1).first()
    if row is not None:
        return row
    try:
        return SecuritySettings.objects.create(pk=1, **_defaults())
    except IntegrityError:  # another request created it first
        return SecuritySettings.objects.get(pk=1)


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """CIDRs separated by commas, spaces or lines; ValueError names the first bad one."""
    networks = []
    for part in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a network (write it like 192.168.1.0/24)") from None
    return networks


def normalized_networks(field: str, value: object) -> str:
    """One network per line, as stored; ValueError names the field and the bad network."""
    try:
        return "\n".join(str(network) for network in parse_networks(str(value)))
    except ValueError as error:
        raise ValueError(f"{field}: {error}") from None


def env_networks() -> str:
    return os.environ.get("CONSOLE_ALLOWED_NETWORKS", "")


def allowed_networks() -> tuple[str, str]:
    """(the allowlist text in force, where it came from). Empty text: every network may connect."""
    row_text = current().allowed_networks.strip()
    if row_text:
        return row_text, "Security page"
    if env_text := env_networks().strip():
        return env_text, "CONSOLE_ALLOWED_NETWORKS"
    return "", "not set"


def address_allowed(address: str | None) -> bool:
    """Loopback always passes (the machine's own user can never be locked out of it), and is
    decided before any database read: most requests to a local console come from loopback."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        ip = None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip is not None and ip.is_loopback:
        return True
    text, _source = allowed_networks()
    if not text:
        return True
    if ip is None:
        return False  # an allowlist is set and the client has no address we can check
    try:
        networks = parse_networks(text)
    except ValueError:
        # A broken allowlist must fail closed: refusing is recoverable from loopback.
        return False
    return any(ip in network for network in networks)


def command_checks_allowed() -> bool:
    """Command checks run programs here: off in LAN mode unless an admin turns them on."""
    return not settings.LAN_MODE or current().command_checks


def update(values: dict) -> tuple[SecuritySettings, dict]:
    """Validate and save; returns (row, {field: (old, new)}). ValueError names the bad field."""
    row = current()
    changes = {}
    for field, value in values.items():
        if field not in EDITABLE or value is None:
            continue
        if field in LIMITS:
            low, high = LIMITS[field]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{field}: a whole number from {low} to {high}")
        elif field in NETWORK_FIELDS:
            value = normalized_networks(field, value)
        elif field == "command_checks":
            value = bool(value)
        old = getattr(row, field)
        if old != value:
            changes[field] = (old, value)
            setattr(row, field, value)
    if changes:
        row.save()
    return row, changes
