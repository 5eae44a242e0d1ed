"""What every probe returns or raises; the probe modules and their dispatcher share it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# A check's target as stored (JSON): each probe reads the keys of its own type.
Target = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    latency_ms: float
    detail: str = ""


Probe = Callable[..., Awaitable[ProbeResult]]


class ProbeFailed(Exception):
    """A failure whose message is meant for the user ("expected 200, got 503")."""
