"""The state machine: thresholds, flapping protection, pending and paused."""

from __future__ import annotations

from health.states import DEGRADED, DOWN, PAUSED, PENDING, UP, Tracker, advance, outcome_of


def test_it_grades_one_result_by_its_latency():
    assert outcome_of(True, 40, warn_ms=50, crit_ms=100) == UP
    assert outcome_of(True, 60, warn_ms=50, crit_ms=100) == DEGRADED
    assert outcome_of(True, 150, warn_ms=50, crit_ms=100) == DOWN
    assert outcome_of(False, 1, warn_ms=50, crit_ms=100) == DOWN
    assert outcome_of(True, 10_000, warn_ms=None, crit_ms=None) == UP
    # A threshold is a limit the check may reach: only slower than it counts against it.
    assert outcome_of(True, 50, warn_ms=50, crit_ms=100) == UP
    assert outcome_of(True, 100, warn_ms=50, crit_ms=100) == DEGRADED


def _run(outcomes, state=UP, failures=2, successes=1):
    tracker = Tracker(state)
    seen = []
    for outcome in outcomes:
        tracker = advance(tracker, outcome, failures, successes)
        seen.append(tracker.state)
    return seen


def test_it_goes_down_only_after_enough_failures_in_a_row():
    assert _run([DOWN, UP, DOWN, UP]) == [UP, UP, UP, UP]
    assert _run([DOWN, DOWN, DOWN]) == [UP, DOWN, DOWN]
    assert _run([DOWN, DOWN, DOWN], failures=3) == [UP, UP, DOWN]


def test_it_comes_back_only_after_enough_successes():
    assert _run([UP, DOWN, UP, UP], state=DOWN, successes=2) == [DOWN, DOWN, DOWN, UP]
    assert _run([DEGRADED], state=DOWN) == [DEGRADED]


def test_it_moves_between_up_and_degraded_at_once():
    assert _run([DEGRADED, UP, DEGRADED]) == [DEGRADED, UP, DEGRADED]


def test_it_takes_the_first_state_of_a_pending_check_at_once():
    assert _run([DOWN], state=PENDING) == [DOWN]
    assert _run([UP], state=PENDING) == [UP]


def test_it_leaves_a_paused_check_alone():
    assert _run([DOWN, DOWN, UP], state=PAUSED) == [PAUSED, PAUSED, PAUSED]
