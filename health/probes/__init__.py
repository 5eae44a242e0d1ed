"""Probes: one module per check type, asyncio, no Django. Each returns a ProbeResult.

A probe answers "did it work, and how long did it take"; whether that is up, degraded or down
(thresholds, flapping) is decided in `health.states`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    latency_ms: float
    detail: str = ""


Probe = Callable[[dict, float], Awaitable[ProbeResult]]


class ProbeFailed(Exception):
    """A failure whose message is meant for the user ("expected 200, got 503")."""


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


async def run_probe(kind: str, target: dict, timeout: float) -> ProbeResult:
    """Run one probe; never raises, never outlives `timeout` (plus a little for cleanup)."""
    probe = _probes().get(kind)
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    if probe is None:
        return ProbeResult(False, 0.0, f"unknown check type {kind!r}")
    try:
        async with asyncio.timeout(timeout):
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
