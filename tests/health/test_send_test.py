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


@pytest.mark.django_db(transaction=True)
def test_a_worker_pass_during_a_test_send_does_not_send_it_again(receiver):
    # The button's alert is claimed (sending) before it leaves, as the worker claims its own:
    # an alert worker running meanwhile must not take it for a pending one and post it twice.
    from asgiref.sync import async_to_sync

    channel = AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    delivered_meanwhile = []
    receiver.on_first_post = lambda: delivered_meanwhile.append(async_to_sync(alerts.deliver_due)())
    logged = alerts.send_test(channel)
    assert logged.status == "sent"
    assert delivered_meanwhile == [0]
    assert len(receiver.received) == 1
