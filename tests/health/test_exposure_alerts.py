"""Who is told of a dangerous exposure, and how often: channels that asked and are enabled,
once a day per listener, with the process named on one short line."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from console.security.exposures import Finding
from health import alerts
from health.models import Alert, AlertChannel

pytestmark = pytest.mark.django_db


def _finding(process: str = "python -m flask run", port: int = 5000) -> Finding:
    return Finding(
        port=port,
        proto="tcp",
        address="0.0.0.0",
        exposure="lan",
        pid=4242,
        process=process,
        kind="werkzeug-debugger",
        severity="danger",
        risk="The Werkzeug debugger is reachable.",
        fix="Stop it, or bind it to 127.0.0.1.",
        probed=True,
    )


def _channel(name: str, **fields) -> AlertChannel:
    return AlertChannel.objects.create(
        name=name, kind="webhook", config={"url": "http://127.0.0.1:9/"}, **fields
    )


def test_only_enabled_channels_that_asked_are_told():
    asked = _channel("asked", on_exposure=True)
    _channel("off", on_exposure=True, enabled=False)
    _channel("did-not-ask")
    (alert,) = alerts.enqueue_exposures([_finding()])
    assert alert.channel == asked
    assert (alert.event, alert.state, alert.check_name) == (
        "exposure",
        "danger",
        "exposure of port 5000",
    )
    assert alert.message == (
        "Dangerous exposure: port 5000 werkzeug-debugger (python -m flask run, pid 4242): "
        "The Werkzeug debugger is reachable. Fix: Stop it, or bind it to 127.0.0.1."
    )


def test_nothing_is_queued_without_findings_or_without_a_channel():
    assert alerts.enqueue_exposures([_finding()]) == []
    _channel("asked", on_exposure=True)
    assert alerts.enqueue_exposures([]) == []
    assert not Alert.objects.exists()


def test_a_listener_is_told_once_a_day_per_channel():
    first = _channel("first", on_exposure=True)
    assert len(alerts.enqueue_exposures([_finding()])) == 1
    assert alerts.enqueue_exposures([_finding()]) == []  # the console restarted: not news
    second = _channel("second", on_exposure=True)
    (again,) = alerts.enqueue_exposures([_finding()])
    assert again.channel == second  # a channel added since is told
    # Older than a day: news again, for both.
    Alert.objects.update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    assert {a.channel for a in alerts.enqueue_exposures([_finding()])} == {first, second}
    # Another port is another listener.
    assert len(alerts.enqueue_exposures([_finding(port=5001)])) == 2


def test_the_process_is_named_on_one_line_of_at_most_80_characters():
    _channel("hook", on_exposure=True)
    exact = "x" * 80
    (alert,) = alerts.enqueue_exposures([_finding(process=exact)])
    assert f"({exact}, pid 4242)" in alert.message
    (longer,) = alerts.enqueue_exposures([_finding(process="python  -c\n" + "y" * 100)])
    # Whitespace folded to single spaces, then cut to 79 characters and an ellipsis.
    assert "(python -c " + "y" * 69 + "…, pid 4242)" in longer.message
