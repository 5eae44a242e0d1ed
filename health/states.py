"""The state machine: from one probe result to an outcome, and from outcomes to a state.

Pure functions so that flapping rules are tested without a database or a network (Django's
TextChoices needs neither).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class CheckState(models.TextChoices):
    """A check's state, as stored and as the API names it. One result's outcome is up, degraded
    or down."""

    PENDING = "pending"
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    PAUSED = "paused"


# The names the state machine and its callers read as `states.DOWN`: the members themselves.
PENDING = CheckState.PENDING
UP = CheckState.UP
DEGRADED = CheckState.DEGRADED
DOWN = CheckState.DOWN
PAUSED = CheckState.PAUSED


def outcome_of(ok: bool, latency_ms: float, warn_ms: int | None, crit_ms: int | None) -> str:
    """One result: a failure or slower than crit_ms is down; slower than warn_ms is degraded."""
    if not ok:
        return DOWN
    if crit_ms and latency_ms > crit_ms:
        return DOWN
    if warn_ms and latency_ms > warn_ms:
        return DEGRADED
    return UP


@dataclass(frozen=True, slots=True)
class Tracker:
    state: str = PENDING
    fail_streak: int = 0
    success_streak: int = 0


def advance(
    tracker: Tracker, outcome: str, failures_before_down: int, successes_before_up: int
) -> Tracker:
    """The next state after one outcome.

    A check goes down only after `failures_before_down` failures in a row, and comes back after
    `successes_before_up` successes in a row, so one lost packet does not page anyone. A pending
    check takes its first state at once: there is nothing to protect from flapping yet, and the
    page should not show "pending" for two intervals.
    """
    if tracker.state == PAUSED:
        return tracker
    failed = outcome == DOWN
    fail_streak = tracker.fail_streak + 1 if failed else 0
    success_streak = 0 if failed else tracker.success_streak + 1
    state = tracker.state
    if tracker.state == PENDING:
        state = outcome
    elif failed:
        if state != DOWN and fail_streak >= max(1, failures_before_down):
            state = DOWN
    elif state == DOWN:
        if success_streak >= max(1, successes_before_up):
            state = outcome
    else:
        # Between up and degraded there is no flapping protection: both mean "it answers".
        state = outcome
    return Tracker(state, fail_streak, success_streak)
