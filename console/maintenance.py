"""A background service: every hour, drops expired token records, sign-in failures past their
cool-off, and audit entries older than CONSOLE_AUDIT_RETENTION_DAYS."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

logger = logging.getLogger("console.maintenance")
INTERVAL_S = 3600


def prune_once() -> int:
    from console.foundation import audit, tokens
    from console.security import lockout

    pruned = tokens.prune_expired() + lockout.prune()
    old_entries = audit.prune(settings.CONSOLE_AUDIT_RETENTION_DAYS)
    if old_entries:
        logger.info(
            "pruned %d audit entr%s older than %d days",
            old_entries,
            "y" if old_entries == 1 else "ies",
            settings.CONSOLE_AUDIT_RETENTION_DAYS,
        )
    return pruned + old_entries


async def run(stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            pruned = await sync_to_async(prune_once, thread_sensitive=True)()
            if pruned:
                logger.info("pruned %d expired record(s) in all", pruned)
        except Exception:
            logger.exception("pruning failed; trying again in an hour")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=INTERVAL_S)
