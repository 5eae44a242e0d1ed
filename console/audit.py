"""The one way to write the audit log."""

from __future__ import annotations

import logging

from console.models import AuditEntry

logger = logging.getLogger("console.audit")


def client_address(request) -> str | None:
    # REMOTE_ADDR only: a header such as X-Forwarded-For is the client's word, not a fact.
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    request=None,
    user=None,
    target: str = "",
    outcome: str = "ok",
    address: str | None = None,
    **detail,
) -> AuditEntry:
    user = user if user is not None else getattr(request, "user", None)
    if user is not None and not user.is_authenticated:
        user = None
    entry = AuditEntry.objects.create(
        user=user,
        username=user.get_username() if user else detail.pop("username", ""),
        address=address or client_address(request),
        action=action,
        target=str(target)[:255],
        outcome=outcome,
        detail=detail,
    )
    logger.info("audit %s %s %s %s", entry.username or "-", action, target, outcome)
    return entry
