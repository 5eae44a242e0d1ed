"""The "send test" button's alert: what the channel receives and what the log keeps."""

from __future__ import annotations

import pytest

from health import alerts
from health.models import Alert, AlertChannel

pytestmark = pytest.mark.django_db


def test_a_test_alert_says_it_is_a_test_to_the_channel_and_in_the_log(receiver):
    channel = AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    logged = alerts.send_test(channel)
    expected = alerts.message_for("test", "hook", "up", "")
    assert (logged.check_name, logged.event, logged.state, logged.message, logged.status) == (
        "test",
        "test",
        "up",
        expected,
        "sent",
    )
    ((_path, body),) = receiver.received
    assert body["event"] == "test" and body["state"] == "up" and body["message"] == expected
    assert body["check"] == {"id": None, "name": "test"}
    assert Alert.objects.get() == logged
