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
        **{"remind_every_s": EVERY, **fields},
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


def test_only_down_checks_are_reminded_and_only_by_channels_that_ask():
    now = timezone.now()
    long_ago = now - timedelta(days=1)
    asks = _channel("asks", remind_every_s=1)  # the shortest interval there is
    _channel("never", remind_every_s=0)
    down = _down("api", since=long_ago)
    Check.objects.create(
        name="fine",
        type="tcp",
        target={"host": "127.0.0.1", "port": 1},
        state=states.UP,
        state_since=long_ago,
    )
    assert alerts.enqueue_reminders(now) == 1
    (reminder,) = Alert.objects.filter(event="reminder")
    assert (reminder.channel, reminder.check_ref) == (asks, down)


def test_a_claimed_alert_left_sending_goes_back_to_the_queue():
    channel = _channel()
    stuck = Alert.objects.create(
        channel=channel, check_name="api", event="trigger", state="down", status="sending"
    )
    sent = Alert.objects.create(
        channel=channel, check_name="api", event="trigger", state="down", status="sent"
    )
    assert alerts.release_stuck() == 1
    stuck.refresh_from_db()
    sent.refresh_from_db()
    assert (stuck.status, sent.status) == ("pending", "sent")


def test_the_worker_knows_how_long_until_the_next_pending_alert():
    channel = _channel()
    assert alerts.seconds_to_next_attempt() is None
    now = timezone.now()
    Alert.objects.create(
        channel=channel,
        check_name="api",
        event="trigger",
        state="down",
        status="sent",
        next_attempt_at=now - timedelta(hours=1),
    )
    assert alerts.seconds_to_next_attempt() is None  # only pending alerts wait
    later = Alert.objects.create(
        channel=channel,
        check_name="api",
        event="trigger",
        state="down",
        next_attempt_at=now + timedelta(hours=1),
    )
    assert 3000 < alerts.seconds_to_next_attempt() <= 3600
    later.next_attempt_at = now - timedelta(minutes=5)
    later.save()
    assert alerts.seconds_to_next_attempt() == 0.0  # overdue: now, not in a second
