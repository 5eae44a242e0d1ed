"""Reminders stay quiet where nobody asked for them: a paused check, a disabled channel, the
interval not yet over; and each check is reminded on its own clock, from its own last alert."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from health import alerts, states
from health.models import Alert, AlertChannel, Check

pytestmark = pytest.mark.django_db

EVERY = 600


def _down(name: str, *, since, enabled: bool = True) -> Check:
    return Check.objects.create(
        name=name,
        type="tcp",
        target={"host": "127.0.0.1", "port": 1},
        state=states.DOWN,
        state_since=since,
        enabled=enabled,
        last_detail="connection refused",
    )


def _channel(name: str = "hook", **fields) -> AlertChannel:
    return AlertChannel.objects.create(
        name=name,
        kind="webhook",
        config={"url": "http://127.0.0.1:9/"},
        remind_every_s=EVERY,
        **fields,
    )


def test_a_down_check_is_reminded_once_its_interval_is_over_exactly():
    now = timezone.now()
    channel = _channel()
    check = _down("api", since=now - timedelta(seconds=EVERY))
    assert alerts.enqueue_reminders(now - timedelta(seconds=1)) == 0
    assert alerts.enqueue_reminders(now) == 1
    reminder = Alert.objects.get()
    assert (reminder.channel, reminder.check_ref, reminder.check_name) == (channel, check, "api")
    assert (reminder.event, reminder.state, reminder.created_at) == ("reminder", "down", now)
    assert "connection refused" in reminder.message
    check.refresh_from_db()
    assert check.last_reminder_at == now


def test_nothing_is_reminded_for_a_paused_check_or_through_a_disabled_channel():
    long_ago = timezone.now() - timedelta(days=1)
    _channel()
    _down("paused", since=long_ago, enabled=False)
    assert alerts.enqueue_reminders() == 0
    Check.objects.all().delete()
    AlertChannel.objects.update(enabled=False)
    _down("api", since=long_ago)
    assert alerts.enqueue_reminders() == 0
    assert not Alert.objects.exists()


def test_each_check_counts_from_its_own_last_alert_on_that_channel():
    now = timezone.now()
    channel = _channel()
    other = _channel("other")
    recent = _down("recent", since=now - timedelta(days=1))
    old = _down("old", since=now - timedelta(days=1))
    # `recent` was alerted a minute ago on this channel; `old` only on another channel.
    Alert.objects.create(
        channel=channel, check_ref=recent, check_name="recent", event="trigger", created_at=now
    )
    Alert.objects.create(
        channel=other, check_ref=old, check_name="old", event="trigger", created_at=now
    )
    # A test alert or a recovery is not a reminder of the outage: it does not reset the clock.
    Alert.objects.create(
        channel=channel, check_ref=old, check_name="old", event="test", created_at=now
    )
    # Each pair is judged alone: `old` on this channel, `recent` on the other are overdue.
    assert alerts.enqueue_reminders(now + timedelta(seconds=60)) == 2
    reminded = set(
        Alert.objects.filter(event="reminder").values_list("channel__name", "check_name")
    )
    assert reminded == {("hook", "old"), ("other", "recent")}
