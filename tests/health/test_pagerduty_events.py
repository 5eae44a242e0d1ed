"""The PagerDuty Events API v2 body of each kind of alert (the contract with PagerDuty).

https://developer.pagerduty.com/docs/events-api-v2/trigger-events/: routing_key, event_action,
dedup_key, and for a trigger a payload of summary (at most 1024 characters), source, severity.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from health import alerts
from health.models import Alert

KEY = {"routing_key": "R0UT1NG-KEY"}


def _alert(event: str, message: str = "api is DOWN", check_id: int | None = 7) -> Alert:
    return Alert(
        event=event,
        message=message,
        state="down",
        previous_state="up",
        check_ref_id=check_id,
        check_name="api",
        created_at=timezone.now(),
    )


def test_a_down_alert_triggers_a_critical_incident_keyed_by_its_check():
    alert = _alert("trigger")
    assert alerts._pd(alert, KEY) == {
        "routing_key": "R0UT1NG-KEY",
        "event_action": "trigger",
        "dedup_key": "portside-check-7",
        "payload": {
            "summary": "api is DOWN",
            "source": "portside",
            "severity": "critical",
            "custom_details": alerts.payload_for(alert),
        },
    }


def test_a_degraded_alert_is_a_warning():
    assert alerts._pd(_alert("degraded"), KEY)["payload"]["severity"] == "warning"


def test_a_recovery_resolves_the_same_incident_and_carries_no_payload():
    assert alerts._pd(_alert("recovery"), KEY) == {
        "routing_key": "R0UT1NG-KEY",
        "event_action": "resolve",
        "dedup_key": "portside-check-7",
    }


def test_a_test_send_has_its_own_key():
    assert alerts._pd(_alert("test", check_id=None), KEY)["dedup_key"] == "portside-check-test"


@pytest.mark.parametrize("length", [200, 300])
def test_an_exposure_is_keyed_by_its_first_200_characters(length):
    message = "x" * length
    body = alerts._pd(_alert("exposure", message=message, check_id=None), KEY)
    assert body["dedup_key"] == "portside-exposure-" + "x" * 200
    assert body["payload"]["severity"] == "critical"


def test_a_long_message_is_cut_to_pagerduty_s_1024_characters():
    body = alerts._pd(_alert("trigger", message="y" * 1100), KEY)
    assert body["payload"]["summary"] == "y" * 1024
