"""Where health checks may connect, from the settings: the one place that builds the policy.

The policy itself (`health.probes.netpolicy`) is pure; this module reads what an admin set:
`CONSOLE_CHECK_NETWORKS` (fixed at start) and Check networks on the Security page (at run
time); both widen the reach, together. LAN mode widens nothing: serving the LAN is not a reason
to let checks reach into it.

The scheduler runs 2,000 checks every few seconds, so the policy is cached for a second (and
forgotten when the settings are saved): one primary-key read a second instead of one per probe.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models.signals import post_save

from console.foundation.models import SecuritySettings
from health.probes.netpolicy import NetworkPolicy, parse_ip

logger = logging.getLogger("health.outbound")

CACHE_SECONDS = 1.0
# A check being saved waits this long for its name to resolve; a name that does not resolve
# in time (or at all) is saved, and judged again at each run after resolution.
SAVE_RESOLVE_TIMEOUT_S = 2.0


class _Cached(NamedTuple):
    policy: NetworkPolicy
    read_at: float


_cached: _Cached | None = None
_build_lock = threading.Lock()
# One thread for the policy's database read from the scheduler's loop: one connection, reused.
_reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="check-policy")
_refreshing: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future] = (
    weakref.WeakKeyDictionary()
)
# Name lookups at save time: a few threads, so one slow resolver cannot hold every save.
_save_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="check-resolve")


def build_policy() -> NetworkPolicy:
    """The policy from the settings as they are now (one database read)."""
    row_text = ""
    try:
        stored = SecuritySettings.objects.filter(pk=1).values_list("check_networks", flat=True)
        row_text = stored.first() or ""
    except DatabaseError:
        # Fail closed: without the row, only what the environment allows.
        logger.exception("could not read Check networks; using CONSOLE_CHECK_NETWORKS alone")
    try:
        return NetworkPolicy.from_text(settings.CONSOLE_CHECK_NETWORKS, row_text)
    except ValueError:
        # Saved text is validated, so this is a hand-edited row: ignore it rather than widen.
        logger.error("Check networks on the Security page is invalid: %r; ignored", row_text)
        return NetworkPolicy.from_text(settings.CONSOLE_CHECK_NETWORKS)


def _store(policy: NetworkPolicy) -> NetworkPolicy:
    global _cached
    _cached = _Cached(policy, time.monotonic())
    return policy


def _fresh() -> NetworkPolicy | None:
    cached = _cached
    if cached is not None and time.monotonic() - cached.read_at < CACHE_SECONDS:
        return cached.policy
    return None


def policy() -> NetworkPolicy:
    """The policy in force, for synchronous code (requests, commands)."""
    if (current := _fresh()) is not None:
        return current
    with _build_lock:
        return _fresh() or _store(build_policy())


def _build_in_reader_thread() -> NetworkPolicy:
    try:
        close_old_connections()  # this thread lives long: drop a connection the database closed
        return policy()
    except Exception:
        # Never fail the probes for it, never widen: the environment's networks alone, kept
        # for the cache's second so that a broken database is not asked once per probe.
        logger.exception("could not build the check network policy")
        return _store(NetworkPolicy.from_text(settings.CONSOLE_CHECK_NETWORKS))


async def current_policy() -> NetworkPolicy:
    """The policy in force, from an event loop: the database read runs on a thread, once for
    all the probes that ask while it runs."""
    if (current := _fresh()) is not None:
        return current
    loop = asyncio.get_running_loop()
    future = _refreshing.get(loop)
    if future is None or future.done():
        future = loop.run_in_executor(_reader, _build_in_reader_thread)
        _refreshing[loop] = future
    # shield: one probe's cancellation (its timeout) must not cancel the others' read.
    return await asyncio.shield(future)


def forget(**_kwargs) -> None:
    """Drop the cached policy (on every save of the settings row)."""
    global _cached
    _cached = None


post_save.connect(forget, sender=SecuritySettings, dispatch_uid="health.outbound.forget")


def _resolve_for_save(host: str) -> list[str]:
    future = _save_resolver.submit(socket.getaddrinfo, host, None, type=socket.SOCK_STREAM)
    infos = future.result(timeout=SAVE_RESOLVE_TIMEOUT_S)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal_for_host(
    host: str,
    *,
    policy_in_force: NetworkPolicy | None = None,
    resolve: Callable[[str], list[str]] | None = None,
) -> str | None:
    """Why a check may not be saved with this host, or None. For `health.specs` at save time.

    A literal address is judged at once. A name is resolved (for up to 2 s) and refused when
    any of its addresses is; a name that does not resolve now is allowed, since every run
    judges the addresses it connects to anyway (and DNS may be down only at this moment)."""
    host = (host or "").strip()
    if not host:
        return None
    judge = policy_in_force or policy()
    if parse_ip(host) is not None:
        return judge.refusal(host)
    try:
        # Looked up at the call, not bound as a default, so that tests can answer for DNS.
        addresses = (resolve or _resolve_for_save)(host)
    except (OSError, FutureTimeout, ValueError):  # ValueError: a name IDNA cannot encode
        return None
    for address in addresses:
        if (reason := judge.refusal(address)) is not None:
            return f"{host}: {reason}"
    return None
