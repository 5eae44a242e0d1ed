"""Which alert each state change is worth to a channel: the whole table, so a quiet channel
stays quiet and one that asked about slowness hears both its start and its end."""

from __future__ import annotations

import pytest

from health.alerts import event_for
from health.states import DEGRADED, DOWN, PAUSED, PENDING, UP


@pytest.mark.parametrize(
    ("before", "after", "quiet", "asked"),
    [
        (UP, DOWN, "trigger", "trigger"),
        (PENDING, DOWN, "trigger", "trigger"),
        (DEGRADED, DOWN, "trigger", "trigger"),
        (PAUSED, DOWN, None, None),  # resumed and found down: the next failure says so
        (DOWN, UP, "recovery", "recovery"),
        (DOWN, DEGRADED, "recovery", "recovery"),
        (UP, DEGRADED, None, "degraded"),
        (PENDING, DEGRADED, None, "degraded"),
        (DEGRADED, UP, None, "recovery"),
        (PENDING, UP, None, None),
        (UP, PAUSED, None, None),
        (DOWN, PAUSED, None, None),
    ],
)
def test_each_change_is_worth_its_alert(before, after, quiet, asked):
    assert event_for(before, after, on_degraded=False) == quiet
    assert event_for(before, after, on_degraded=True) == asked
