"""The one way to write the audit log."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.foundation.models import AuditEntry

logger = logging.getLogger("console.foundation.audit")


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


def record_refusal_folded(
    action: str,
    *,
    target: str,
    outcome: str,
    request=None,
    address: str | None = None,
    reason: str = "",
) -> AuditEntry:
    """An anonymous refusal, counted on the row of its address, action, target and minute.

    A scanner hammering /api/v1/ports without a token must not grow the log by a row a request
    (nor slow every page that reads it): 200 refusals in a minute are one row with count 200.
    Only for refusals nobody signed in for; a user's refusal is evidence about that user and
    stays a row of its own (`record`).
    """
    address = address or client_address(request)
    target = str(target)[:255]
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    same = AuditEntry.objects.filter(
        user__isnull=True,
        username="",
        address=address,
        action=action,
        target=target,
        outcome=outcome,
        detail__reason=reason,
        at__gte=minute,
        at__lt=minute + timedelta(minutes=1),
    )
    # One transaction: on SQLite (BEGIN IMMEDIATE) two refusals at once cannot both miss the
    # row and insert one each. PostgreSQL may rarely split a minute in two rows; the sum holds.
    with transaction.atomic():
        entry = same.order_by("id").first()
        if entry is not None and same.filter(id=entry.id).update(count=F("count") + 1):
            entry.count += 1  # what the UPDATE wrote, without reading it back
            return entry
        entry = AuditEntry.objects.create(
            at=now,
            address=address,
            action=action,
            target=target,
            outcome=outcome,
            detail={"reason": reason},
        )
    # Logged once a minute per row: the request log already has a line per request.
    logger.info(
        "audit - %s %s %s (anonymous: this minute's repeats are counted)", *entry_key(entry)
    )
    return entry


def entry_key(entry: AuditEntry) -> tuple[str, str, str]:
    return entry.action, entry.target, entry.outcome


def prune(retention_days: int, now=None) -> int:
    """Delete entries older than the retention (CONSOLE_AUDIT_RETENTION_DAYS); 0 keeps all."""
    if retention_days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    deleted, _ = AuditEntry.objects.filter(at__lt=cutoff).delete()
    return deleted
