"""Probes: one module per check type, asyncio, no Django. Each returns a ProbeResult.

A probe answers "did it work, and how long did it take"; whether that is up, degraded or down
(thresholds, flapping) is decided in `health.states`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING

from health.probes.results import Probe, ProbeFailed, ProbeResult, Target

if TYPE_CHECKING:
    from health.probes.netpolicy import NetworkPolicy

__all__ = ["NETWORKED", "Probe", "ProbeFailed", "ProbeResult", "Target", "run_probe"]


# The probes that open connections take the network policy (`policy=`); each connects only to
# addresses it allows.
NETWORKED = frozenset({"http", "tcp", "redis", "query"})


@functools.cache
def _probes() -> dict[str, Probe]:
    # Imported on first use: `health.probes.query` pulls in psycopg only when needed.
    from health.probes import command, http, query, redis, tcp

    return {
        "http": http.probe,
        "tcp": tcp.probe,
        "redis": redis.probe,
        "query": query.probe,
        "command": command.probe,
    }


async def run_probe(
    kind: str, target: Target, timeout: float, policy: NetworkPolicy | None = None
) -> ProbeResult:
    """Run one probe; never raises, never outlives `timeout` (plus a little for cleanup).

    `policy` says where it may connect; without one, loopback and this machine's own addresses
    only (the caller that knows the admin's settings, `health.runner`, passes them)."""
    probe = _probes().get(kind)
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    if probe is None:
        return ProbeResult(False, 0.0, f"unknown check type {kind!r}")
    try:
        async with asyncio.timeout(timeout):
            if kind in NETWORKED:
                from health.probes.netpolicy import LOCAL_ONLY

                result = await probe(target, timeout, policy=policy or LOCAL_ONLY)
            else:
                result = await probe(target, timeout)
    except TimeoutError:
        return ProbeResult(False, elapsed(), f"timed out after {timeout:g}s")
    except ProbeFailed as error:
        return ProbeResult(False, elapsed(), str(error)[:300])
    except asyncio.CancelledError:
        raise
    except Exception as error:  # a probe bug or an odd network error is a failed check, not a crash
        return ProbeResult(False, elapsed(), f"{type(error).__name__}: {error}"[:300])
    return result
