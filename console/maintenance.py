"""A background service: drops expired token records and sign-in failures past their cool-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async

logger = logging.getLogger("console.maintenance")
INTERVAL_S = 3600


def prune_once() -> int:
    from console import tokens
    from console.security import lockout

    return tokens.prune_expired() + lockout.prune()


async def run(stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            pruned = await sync_to_async(prune_once, thread_sensitive=True)()
            if pruned:
                logger.info("pruned %d expired token record(s) and sign-in failure(s)", pruned)
        except Exception:
            logger.exception("pruning failed; trying again in an hour")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=INTERVAL_S)
