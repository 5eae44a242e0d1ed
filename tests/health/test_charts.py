"""The latency chart draws answers only; the 24 h bar colours hours by their good results."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from health import charts, dashboard, storage
from health.models import Check, Result

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _results(*runs: tuple[str, float, bool | None]) -> list[Result]:
    return [
        Result(
            at=START + timedelta(seconds=index),
            outcome=outcome,
            latency_ms=latency,
            answered=answered,
            detail="refused" if outcome == "down" else "HTTP 200",
        )
        for index, (outcome, latency, answered) in enumerate(runs)
    ]


def test_failed_runs_break_the_line_and_mark_the_axis_instead_of_a_point():
    svg = str(
        charts.latency_chart(
            _results(
                ("up", 10, True),
                ("up", 12, True),
                ("down", 5000, False),  # the timeout: not a latency
                ("up", 11, True),
                ("up", 14, True),
            ),
            None,
            None,
        )
    )
    assert svg.count('class="latency-line"') == 2  # two runs of answers, a gap between
    assert svg.count("<circle") == 4 and svg.count('class="down-mark"') == 1
    assert "12:00:02: failed, refused" in svg
    # The scale comes from the answers: no 5000 ms tick.
    ticks = [float(value) for value in re.findall(r">([\d.]+) ms</text>", svg)]
    assert max(ticks) < 100
    assert 'aria-label="latency of the last 5 results: 10 to 14 ms; 1 failed"' in svg


def test_a_slow_answer_that_is_down_by_threshold_is_still_drawn():
    svg = str(charts.latency_chart(_results(("up", 10, True), ("down", 900, True)), None, 500))
    assert svg.count("<circle") == 2 and "down-mark" not in svg
    assert "12:00:01: 900.0 ms, down" in svg and "down above 500 ms" in svg


def test_results_stored_before_answers_were_recorded_read_down_as_failed():
    svg = str(charts.latency_chart(_results(("up", 10, None), ("down", 3000, None)), None, None))
    assert svg.count("<circle") == 1 and svg.count("down-mark") == 1


def test_each_point_has_its_time_value_and_outcome_on_hover():
    svg = str(
        charts.latency_chart(_results(("up", 10.5, True), ("degraded", 250, True)), 200, None)
    )
    assert "<title>12:00:00: 10.5 ms, up</title>" in svg
    assert "<title>12:00:01: 250.0 ms, degraded</title>" in svg
    assert 'class="pt pt-degraded"' in svg


def test_the_axes_have_units_and_times():
    svg = str(
        charts.latency_chart(_results(*[("up", 40 + i, True) for i in range(10)]), None, None)
    )
    assert re.findall(r">([\d.]+) ms</text>", svg) == ["0", "20", "40"]
    assert ">12:00:00<" in svg and ">12:00:09<" in svg


def test_a_chart_of_failures_only_says_so():
    svg = str(
        charts.latency_chart(_results(("down", 5000, False), ("down", 5000, False)), None, None)
    )
    assert "none of these 2 runs answered" in svg and "<circle" not in svg


@pytest.mark.parametrize(
    ("top", "ticks"),
    [(1.1, [0, 0.5, 1.0]), (110, [0, 50, 100]), (5500, [0, 2000, 4000]), (0, [0])],
)
def test_nice_ticks_are_round_numbers(top, ticks):
    assert charts.nice_ticks(top) == ticks


@pytest.mark.parametrize(
    ("slot", "grade"),
    [
        ((60, 60, 0), "ok"),
        ((60, 30, 30), "ok"),  # degraded answered: good
        ((60, 59, 0), "warn"),
        ((100, 90, 0), "warn"),
        ((100, 89, 0), "bad"),
        (None, "none"),
    ],
)
def test_the_bar_colours_an_hour_by_its_share_of_good_results(slot, grade):
    labels = charts.hour_labels(START)
    svg = str(charts.uptime_bar([slot] + [None] * (charts.BAR_HOURS - 1), labels))
    assert re.search(r'<rect x="0" class="slot-(\w+)"', svg).group(1) == grade


def test_the_bar_never_rounds_a_failure_up_to_a_hundred_percent():
    labels = charts.hour_labels(START)
    svg = str(charts.uptime_bar([(2000, 1999, 0)] + [None] * 23, labels))
    assert "99.9% good (1999 of 2000)" in svg and "100.0%" not in svg


def test_the_bar_says_in_words_what_its_colours_show():
    labels = charts.hour_labels(START)
    slots = [(10, 10, 0)] * 20 + [(10, 9, 0), (10, 5, 0), None, None]
    svg = str(charts.uptime_bar(slots, labels))
    assert (
        'aria-label="last 24 hours: 20 h all good, 1 h 90-99.9% good, 1 h under 90% good, '
        '2 h no results"'
    ) in svg


@pytest.mark.django_db
def test_the_list_says_failed_rather_than_a_latency_for_a_failed_run():
    check = Check.objects.create(name="db", type="tcp", target={"port": 1})
    storage.store([storage.Observation(check.id, timezone.now(), False, 5000.0, "refused")])
    check.refresh_from_db()
    (row,) = dashboard.rows_for([check])
    assert row.latency_text == "failed"
    storage.store([storage.Observation(check.id, timezone.now(), True, 12.0, "ok")])
    check.refresh_from_db()
    assert dashboard.rows_for([check])[0].latency_text == "12 ms"


@pytest.mark.django_db
def test_a_slow_answer_says_which_threshold_it_passed():
    check = Check.objects.create(name="web", type="http", target={}, warn_ms=100, state="up")
    storage.store([storage.Observation(check.id, timezone.now(), True, 250.0, "HTTP 200")])
    reason = check.state_changes.get().reason
    assert reason == "HTTP 200: answered in 250 ms, above 100 ms"
